"""Which weights a model spec names: the folder (or repo id) transformers loads, and a hash of
its weights, so an adapter is only ever applied to the model it was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ragtune.llm.specs import ModelSpec, local_model_source


def model_weights(spec: str) -> tuple[str, str]:
    """The folder (or repo id) of the local model `spec` names, and the hash of its weights:
    the embedded model's, recorded when it was converted; else `weights_hash` of the folder.

    Raises:
        ConfigError: `spec` names a remote endpoint.
        ModelNotAvailableError: the embedded model's package is missing.
    """
    parsed = ModelSpec.parse(spec)
    if parsed.kind == "embedded":
        from ragtune.llm.embedded import ensure_embedded_model

        embedded = ensure_embedded_model()
        return str(embedded.path), embedded.weights_sha256
    source = local_model_source(parsed)
    return source, weights_hash(source)


def weights_hash(source: str) -> str:
    """SHA-256 over the safetensors files of the model folder `source` (name and bytes, in
    name order); of the repo id itself if `source` is not a local folder."""
    folder = Path(source)
    digest = hashlib.sha256()
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        digest.update(source.encode("utf-8"))
    for path in files:
        digest.update(path.name.encode("utf-8"))
        with path.open("rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
