"""Ask the base model and the memory-tuned model the same questions, side by side.

Usage: python examples/demo.py WORKSPACE [QUESTION ...]

Run it after `ragtune index`, `ragtune synthesize` and `ragtune train` (`make demo` runs all of
them on `examples/sample_corpus`). Neither model is given any note: the base model can only
guess, the tuned model answers from what training put in its weights. Then the tuned model
recalls the passages its answer comes from, grounded to the memory's real text units.
"""

from __future__ import annotations

import sys
import textwrap
import time

from ragtune.llm import GenerationParams, load_backend
from ragtune.model import MemoryModel
from ragtune.progress import library_progress

QUESTIONS = (
    "Who coaches me at the kayak club?",
    "Which city did my sister Clara move to?",
    "How long did the Belém race take me?",
)
MAX_NEW_TOKENS = 48
WIDTH = 96


def show_training(model: MemoryModel) -> None:
    """Print what the adapter was trained on and how training went."""
    manifest = model.manifest
    metrics = manifest.metrics
    card = manifest.data_card
    print(
        f"adapter {manifest.adapter!r} on {manifest.base_model.get('spec')}: "
        f"{card.get('train', '?')} training records, {metrics.get('steps')} steps, "
        f"{metrics.get('tokens')} tokens at {metrics.get('tokens_per_second', 0):.0f} tokens/s "
        f"in {metrics.get('seconds', 0):.0f} s"
    )
    print(
        f"final loss: train {metrics.get('train_loss', float('nan')):.3f}, "
        f"validation {metrics.get('val_loss') or float('nan'):.3f}\n"
    )


def show(label: str, text: str, seconds: float) -> None:
    """Print one model's answer, wrapped under its label."""
    body = textwrap.fill(" ".join(text.split()), WIDTH - 12, subsequent_indent=" " * 12)
    print(f"  {label:<9} {body}  ({seconds:.1f} s)")


def main(workspace_path: str, questions: list[str]) -> None:
    started = time.perf_counter()
    with library_progress(False):  # loading bars and library warnings would bury the answers
        tuned = MemoryModel.from_workspace(workspace_path)
        spec = tuned.manifest.base_model["spec"]  # the model the adapter was trained on
        base = load_backend(spec)
    print(f"loaded {spec} and {tuned.model_name} in {time.perf_counter() - started:.1f} s")
    show_training(tuned)
    params = GenerationParams(max_tokens=MAX_NEW_TOKENS)
    for question in questions:
        print(f"Q: {question}")
        started = time.perf_counter()
        guess = base.chat([{"role": "user", "content": question}], params=params).text
        show("base", guess, time.perf_counter() - started)
        started = time.perf_counter()
        answer = tuned.answer(question, max_new_tokens=MAX_NEW_TOKENS)
        show("tuned", answer, time.perf_counter() - started)
        print("  recalled sources:")
        for found in tuned.recall(question, k=2):
            when = f", {found.timestamp[:10]}" if found.timestamp else ""
            excerpt = textwrap.shorten(found.text, WIDTH - 8, placeholder=" …")
            print(f"    {found.source}{when} (match {found.score:.1f})\n      {excerpt}")
        print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:] or list(QUESTIONS))
