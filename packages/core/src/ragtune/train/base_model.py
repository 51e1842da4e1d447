"""The base model to tune: loaded from a local model spec, optionally quantized, and identified
by a hash of its weights (so an adapter is never applied to another model).

Two bitsandbytes traps are handled here (see DESIGN.md): a GGUF-loaded model cannot take a
quantization config (the embedded model is a converted safetensors folder, so it can), and on
CPUs with AVX512-BF16 the first no-grad forward (an evaluation) repacks every `Linear4bit` for
inference, after which gradients through it are silently wrong; `disable_cpu_repacking` turns
that off before any evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ragtune.errors import ModelNotAvailableError
from ragtune.llm.weights import model_weights
from ragtune.logs import hide_kernels_warning

Quantization = Literal["4bit", "8bit", "none"]


@dataclass(frozen=True)
class BaseModel:
    """A loaded base model.

    Attributes:
        model: The transformers causal LM.
        tokenizer: Its tokenizer (with a chat template).
        spec: The model spec it was loaded from.
        source: The folder (or repo id) transformers loaded.
        weights_sha256: SHA-256 over its safetensors weight files, in name order.
        quantization: How its linear layers are stored.
    """

    model: Any
    tokenizer: Any
    spec: str
    source: str
    weights_sha256: str
    quantization: Quantization


def resolve_quantization(setting: str) -> Quantization:
    """The quantization `train.quantization` names; auto is 4bit (QLoRA), which measured
    fastest on these CPUs too (bf16 compute), and is the standard on a GPU."""
    return "4bit" if setting == "auto" else setting  # type: ignore[return-value]


def load_base_model(spec: str, quantization: Quantization, *, for_training: bool) -> BaseModel:
    """Load the model named by `spec` (``embedded`` or ``hf:<folder-or-repo>``).

    Raises:
        ConfigError: `spec` names a remote endpoint.
        ModelNotAvailableError: the model cannot be found locally.
    """
    hide_kernels_warning()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source, weights_sha256 = model_weights(spec)
    options: dict[str, Any] = {}
    if quantization == "4bit":
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        options["dtype"] = torch.bfloat16
    elif quantization == "8bit":
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        options["dtype"] = torch.bfloat16
    else:
        options["dtype"] = torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **options)
    except (OSError, ValueError) as error:
        raise ModelNotAvailableError(f"cannot load the model {spec!r}: {error}") from None
    if for_training:
        disable_cpu_repacking(model)
    return BaseModel(model, tokenizer, spec, source, weights_sha256, quantization)


def disable_cpu_repacking(model: Any) -> int:
    """Turn off bitsandbytes' CPU inference repacking on every `Linear4bit` of `model` (the
    AVX512-BF16 gradient trap); returns how many layers were changed."""
    try:
        from bitsandbytes.nn import Linear4bit  # type: ignore[attr-defined]
    except ImportError:
        return 0
    changed = 0
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed
