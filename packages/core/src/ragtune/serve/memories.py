"""`MemoryShelf`: every served memory as a named adapter on one base model in memory.

The base weights are loaded once; each workspace's LoRA adapter is added to the same PEFT model
under its own name, so one more memory costs its adapter (a few MiB), not another base model.
A request's ``model`` picks what answers: a memory by name, its hybrid mode (``<name>:hybrid``:
the memory with passages retrieved from the workspace's Qdrant index put before the question, as
`ragtune eval`'s hybrid system asks), or the base model by its own name with every adapter off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.adapters import AdapterVersions
from ragtune.errors import ConfigError
from ragtune.extras import EXTRAS, missing_modules
from ragtune.llm.types import Message
from ragtune.model.grounding import SourcePassages
from ragtune.model.memory_model import FoundAdapter, find_adapter
from ragtune.prompts import memory_messages, passage, with_passages
from ragtune.serve.keys import ApiKeys

logger = logging.getLogger(__name__)

#: The suffix of a memory's retrieval-augmented mode.
HYBRID = ":hybrid"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class ServedMemory:
    """One memory on the shelf.

    Attributes:
        name: Its name in requests.
        adapter: Its adapter's name inside the shared PEFT model.
        found: The workspace's adapter, checked against the base weights.
        sources: The workspace's text units (what `/v1/recall` grounds in).
        adapter_bytes: The adapter's weights in memory.
        resident_bytes: How much the process grew while the adapter loaded (None for the first
            memory, which loads with the base model).
        retrieval_k: How many passages hybrid mode retrieves.
        refused: An adapter version that failed to load (warned about once).
    """

    name: str
    adapter: str
    found: FoundAdapter
    sources: SourcePassages
    adapter_bytes: int
    resident_bytes: int | None
    retrieval_k: int = 5
    refused: int | None = None
    _index: Any = field(default=None, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def passages(self, question: str) -> list[str]:
        """The hybrid mode's passages for `question`: the workspace's `retrieval_k` closest
        text units in its Qdrant index (built on first use), dated."""
        with self._index_lock:
            if self._index is None:
                from ragtune.baselines.retrieval import UnitIndex

                self._index = UnitIndex.open(self.found.workspace)
            found = self._index.search(question, self.retrieval_k)
        return [passage(hit.unit.text, hit.unit.timestamp) for hit in found]

    def close(self) -> None:
        """Release the hybrid mode's index, if it was opened."""
        with self._index_lock:
            if self._index is not None:
                self._index.close()
                self._index = None


@dataclass(frozen=True)
class Target:
    """What a request's ``model`` names: a memory (native or hybrid) or the base model."""

    model: str
    memory: ServedMemory | None
    hybrid: bool = False

    @property
    def adapter(self) -> str | None:
        """The adapter generation runs with (None: the base model)."""
        return self.memory.adapter if self.memory is not None else None

    def prompt(self, messages: Sequence[Message]) -> list[Message]:
        """`messages` as this target is asked: a memory opens with its system message (as it
        was trained), hybrid mode puts retrieved passages before the last question."""
        if self.memory is None:
            return list(messages)
        if self.hybrid:
            messages = with_passages(messages, self.memory.passages)
        return memory_messages(messages)


class MemoryShelf:
    """The base model and the memories loaded on it; build it with `MemoryShelf.load`.

    Args:
        backend: The base model (a `TransformersBackend` whose model is a `PeftModel` holding
            every memory's adapter).
        memories: The memories by name.
        base_name: The base model's name in requests.
        base_resident_bytes: How much the process grew while the base model and the first
            adapter loaded.
        activate: Turns an adapter on for a ``with`` block (None: the base model alone);
            by default, the PEFT adapters of `backend`'s model.
        load_weights: Replaces an adapter's weights with those in a folder (`follow`); by
            default in `backend`'s PEFT model; None where the engine cannot.
    """

    def __init__(
        self,
        backend: Any,
        memories: dict[str, ServedMemory],
        base_name: str,
        base_resident_bytes: int,
        activate: Callable[[str | None], AbstractContextManager[None]] | None = None,
        load_weights: Callable[[str, Path], None] | None = None,
    ) -> None:
        self.backend = backend
        self._activate = activate or (lambda adapter: _peft_adapter(backend.model, adapter))
        self._load_weights = (
            load_weights
            if activate is not None
            else lambda adapter, folder: _replace_peft_weights(backend.model, adapter, folder)
        )
        self.memories = memories
        self.base_name = base_name
        self.base_resident_bytes = base_resident_bytes
        self.hybrid_available = not missing_modules(*EXTRAS["eval"])

    @classmethod
    def load(
        cls,
        workspaces: Sequence[str | Path],
        *,
        names: Sequence[str | None] | None = None,
        adapter: str = "default",
        device: str = "auto",
        dtype: str = "auto",
        retrieval_k: int = 5,
        keys: ApiKeys | None = None,
        engine: str = "transformers",
    ) -> MemoryShelf:
        """Load the base model once and each workspace's adapter on it.

        Args:
            workspaces: The memories' workspaces (all tuned on the same base model).
            names: Each memory's name (None or missing: its workspace folder's name).
            adapter: The adapter of each workspace to serve.
            device: See `TransformersBackend`.
            dtype: See `TransformersBackend`.
            retrieval_k: How many passages hybrid mode retrieves.
            keys: The API keys that will read these memories: checked before any weights
                load, so a key granting a memory the shelf lacks fails fast.
            engine: ``transformers`` (PEFT adapters on the transformers model), or
                ``llama.cpp`` (the base model's GGUF file run by llama.cpp, each adapter
                converted to a LoRA GGUF; the embedded base model only, on the CPU).

        Raises:
            ConfigError: no workspace, a repeated or invalid name, or memories tuned on
                different base models.
            RagtuneError: a workspace without the adapter, or tuned on other weights.
        """
        from peft import PeftModel

        from ragtune.llm.transformers_backend import TransformersBackend

        if not workspaces:
            raise ConfigError("give at least one workspace to serve")
        given = list(names or [])
        found = [find_adapter(path, adapter) for path in workspaces]
        chosen: list[str] = []
        for i, path in enumerate(workspaces):
            name = given[i] if i < len(given) else None
            chosen.append(name or Path(path).resolve().name)
        _check_names(chosen, found)
        first = found[0]
        for other in found[1:]:
            if other.manifest.base_model.get("weights_sha256") != first.manifest.base_model.get(
                "weights_sha256"
            ):
                raise ConfigError(
                    f"{other.workspace.root} was tuned on {other.base_source}, "
                    f"{first.workspace.root} on {first.base_source}: one server serves memories "
                    "of one base model; start one server per base model"
                )
        base_name = Path(first.base_source).name
        if base_name in chosen:
            raise ConfigError(f"a memory may not be named {base_name!r}, the base model's name")
        if keys is not None:
            keys.check_memories(set(chosen))
        if engine == "llama.cpp":
            return cls._load_llamacpp(chosen, found, base_name, retrieval_k)
        if engine != "transformers":
            raise ConfigError(f"unknown engine {engine!r}: use transformers or llama.cpp")
        before = resident_bytes()
        backend = TransformersBackend(first.base_source, name=base_name, device=device, dtype=dtype)
        internal = [f"memory{i}" for i in range(len(found))]
        model = PeftModel.from_pretrained(
            backend.model, str(first.folder), adapter_name=internal[0]
        )
        base_bytes = resident_bytes() - before
        memories: dict[str, ServedMemory] = {}
        for index, (name, item) in enumerate(zip(chosen, found, strict=True)):
            grown: int | None = None
            if index:
                start = resident_bytes()
                model.load_adapter(str(item.folder), adapter_name=internal[index])
                grown = resident_bytes() - start
            memories[name] = ServedMemory(
                name=name,
                adapter=internal[index],
                found=item,
                sources=SourcePassages(item.workspace),
                adapter_bytes=_adapter_bytes(model, internal[index]),
                resident_bytes=grown,
                retrieval_k=retrieval_k,
            )
            logger.info(
                "memory %s: %s (adapter %.1f MiB)",
                name,
                item.workspace.root,
                memories[name].adapter_bytes / 2**20,
            )
        model.eval()
        backend.model = model.to(backend.device)
        return cls(backend, memories, base_name, base_bytes)

    @classmethod
    def _load_llamacpp(
        cls, names: list[str], found: list[FoundAdapter], base_name: str, retrieval_k: int
    ) -> MemoryShelf:
        import tempfile

        from ragtune.llm.embedded import find_embedded_gguf
        from ragtune.llm.llamacpp_backend import LlamaCppBackend
        from ragtune.model.gguf_export import read_base_config, write_lora_gguf

        first = found[0]
        if not first.on_embedded_model:
            raise ConfigError(
                "the llama.cpp engine serves memories of the embedded base model, whose GGUF "
                f"file ragtune has; {first.workspace.root} was tuned on {first.base_source} "
                "(serve it with --engine transformers, or export --format gguf and run "
                "llama-server)"
            )
        base_config = read_base_config(first)
        # llama.cpp copies an adapter into memory as it loads it: the GGUF files are temporary
        with tempfile.TemporaryDirectory(prefix="ragtune-serve-") as folder:
            scratch = Path(folder)
            before = resident_bytes()
            backend = LlamaCppBackend(find_embedded_gguf(), first.base_source, name=base_name)
            base_bytes = resident_bytes() - before
            memories: dict[str, ServedMemory] = {}
            for index, (name, item) in enumerate(zip(names, found, strict=True)):
                gguf = scratch / f"memory{index}.gguf"
                write_lora_gguf(item.folder, base_config, gguf, name=name)
                start = resident_bytes()
                backend.add_adapter(f"memory{index}", gguf)
                memories[name] = ServedMemory(
                    name=name,
                    adapter=f"memory{index}",
                    found=item,
                    sources=SourcePassages(item.workspace),
                    adapter_bytes=gguf.stat().st_size,
                    resident_bytes=resident_bytes() - start,
                    retrieval_k=retrieval_k,
                )
        return cls(
            backend, memories, base_name, base_bytes, activate=backend.active, load_weights=None
        )

    def model_ids(self, allowed: Any = None) -> list[str]:
        """The names requests may use (those `allowed(name)` accepts, if given): the base
        model, each memory and, with the eval extra installed, its hybrid mode."""
        ids = [self.base_name]
        for name in self.memories:
            ids.append(name)
            if self.hybrid_available:
                ids.append(name + HYBRID)
        return [i for i in ids if allowed is None or i == self.base_name or allowed(i)]

    def target(self, model: str) -> Target | None:
        """What `model` names, or None when the shelf has no such model."""
        if model == self.base_name:
            return Target(model, None)
        name, hybrid = (model[: -len(HYBRID)], True) if model.endswith(HYBRID) else (model, False)
        memory = self.memories.get(name)
        if memory is None or (hybrid and not self.hybrid_available):
            return None
        return Target(model, memory, hybrid)

    def follow(self, adapter: str | None) -> str:
        """Before generating with `adapter`: load its memory's current adapter version if it
        changed (`ragtune train --update`, `ragtune adapters use`), in place of the one
        loaded. Returns what will answer (``name@v3``; the base model's name for None). Call
        it from the generation worker, between generations. A version that cannot be loaded
        (or an engine that cannot swap adapters) leaves the loaded one answering, with a
        warning."""
        memory = next((m for m in self.memories.values() if m.adapter == adapter), None)
        if memory is None:
            return self.base_name
        current = AdapterVersions(memory.found.workspace, memory.found.name).current()
        if current is not None and current != memory.found.version:
            try:
                self._swap(memory)
            except Exception as error:  # the loaded version keeps answering
                if memory.refused != current:
                    logger.warning(
                        "memory %s: keeps answering with v%d; its v%d did not load: %s",
                        memory.name,
                        memory.found.version,
                        current,
                        error,
                    )
                    memory.refused = current
        return f"{memory.name}@v{memory.found.version}"

    def _swap(self, memory: ServedMemory) -> None:
        """Load `memory`'s current adapter version into its adapter's weights."""
        found = find_adapter(memory.found.workspace.root, memory.found.name)
        if self._load_weights is None:
            raise ConfigError("this engine loads adapters at start only; restart the server")
        self._load_weights(memory.adapter, found.folder.resolve())
        logger.info(
            "memory %s: now answering with adapter version v%d (was v%d)",
            memory.name,
            found.version,
            memory.found.version,
        )
        memory.found = found
        memory.refused = None

    def active(self, adapter: str | None) -> AbstractContextManager[None]:
        """Generate with `adapter` on (None: every adapter off) while inside. The caller
        holds the generation lock: one adapter is active at a time."""
        return self._activate(adapter)

    def close(self) -> None:
        """Release what the memories opened (hybrid indexes)."""
        for memory in self.memories.values():
            memory.close()


@contextlib.contextmanager
def _peft_adapter(model: Any, adapter: str | None) -> Iterator[None]:
    """The PEFT model `model` with `adapter` on (None: every adapter off) while inside."""
    if adapter is None:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(adapter)
        yield


def resident_bytes() -> int:
    """This process's resident memory now (Linux; 0 where it cannot be read)."""
    try:
        statm = Path("/proc/self/statm").read_text(encoding="ascii")
        return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _replace_peft_weights(model: Any, adapter: str, folder: Path) -> None:
    """Load the LoRA weights in `folder` into the PEFT adapter `adapter` of `model`, in place
    (its configuration must match: an update keeps its parent's).

    Raises:
        ValueError: the folder's LoRA configuration differs from the loaded adapter's.
    """
    import json

    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    loaded = model.peft_config[adapter]
    wanted = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    same = (
        wanted.get("r") == loaded.r
        and wanted.get("lora_alpha") == loaded.lora_alpha
        and set(wanted.get("target_modules") or ()) == set(loaded.target_modules or ())
    )
    if not same:
        raise ValueError(
            f"its LoRA configuration (r {wanted.get('r')}, alpha {wanted.get('lora_alpha')}) "
            f"differs from the loaded one (r {loaded.r}, alpha {loaded.lora_alpha})"
        )
    weights = load_file(str(folder / "adapter_model.safetensors"), device=str(model.device))
    result = set_peft_model_state_dict(model, weights, adapter_name=adapter)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if unexpected:
        raise ValueError(f"its weights do not fit the loaded adapter ({unexpected[0]}, ...)")


def _adapter_bytes(model: Any, adapter: str) -> int:
    marker = f".{adapter}."
    return sum(
        parameter.numel() * parameter.element_size()
        for name, parameter in model.named_parameters()
        if marker in name
    )


def _check_names(names: list[str], found: list[FoundAdapter]) -> None:
    seen: dict[str, Path] = {}
    for name, item in zip(names, found, strict=True):
        if not _NAME.match(name):
            raise ConfigError(
                f"{name!r} cannot name a memory: use letters, digits, '.', '_' and '-' "
                "(give NAME=WORKSPACE to choose one)"
            )
        if name in seen:
            raise ConfigError(
                f"two memories are named {name!r} ({seen[name]} and {item.workspace.root}); "
                "give NAME=WORKSPACE to tell them apart"
            )
        seen[name] = item.workspace.root
