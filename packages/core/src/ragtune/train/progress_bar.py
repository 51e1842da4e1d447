"""The training progress bar: transformers' bar, with the latest loss beside it instead of a
printed line of metrics per step."""

from __future__ import annotations

import sys
from typing import Any


def loss_progress_callback() -> Any:
    """A `ProgressCallback` that shows the training loss in the bar's postfix and prints one
    line per validation ("epoch 1.00: validation loss 0.3670")."""
    from transformers import ProgressCallback

    class LossProgress(ProgressCallback):  # type: ignore[misc]
        def on_log(
            self,
            args: Any,
            state: Any,
            control: Any,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            bar = self.training_bar
            if not state.is_world_process_zero or bar is None or not logs:
                return
            if "loss" in logs:
                bar.set_postfix(loss=f"{float(logs['loss']):.3f}", refresh=False)
            if "eval_loss" in logs:  # on stderr with the bar: stdout is for the summary
                line = f"epoch {state.epoch or 0:.2f}: validation loss {logs['eval_loss']:.4f}"
                bar.write(line, file=sys.stderr)

    return LossProgress()
