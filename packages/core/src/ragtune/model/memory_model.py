"""`MemoryModel`: the tuned model — base model plus the workspace's adapter — answering questions
about the memory with no retrieval, and recalling the passages its answers come from.

`recall` asks the model the way Recall QA trained it (`ragtune.prompts.recall_question`) and
grounds what it writes to the workspace's text units with BM25, so a recollection is always a
real source passage (its text, metadata and a match score), never the model's invention.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.adapters import AdapterVersions
from ragtune.config import load_config
from ragtune.errors import RagtuneError
from ragtune.llm.base import stripped_pieces
from ragtune.llm.specs import ModelSpec
from ragtune.llm.types import GenerationParams, Message, TokenUsage
from ragtune.llm.weights import model_weights
from ragtune.manifest import Manifest
from ragtune.model.grounding import Recollection, SourcePassages
from ragtune.prompts import answer_messages, memory_messages, recall_question
from ragtune.stages import settle
from ragtune.workspace import Workspace

log = logging.getLogger("ragtune")


@dataclass(frozen=True)
class Reply:
    """A model's answer, the tokens it read (`usage.prompt_tokens`) and wrote, and the adapter
    version that answered."""

    text: str
    usage: TokenUsage
    version: int | None = None


@dataclass(frozen=True)
class FoundAdapter:
    """A workspace's adapter, checked against the base weights it was trained on.

    Attributes:
        workspace: The memory's workspace.
        name: The adapter's name (``default``).
        folder: The adapter's folder.
        manifest: Its manifest.
        base_source: The base model's folder (or file) on this machine.
        base_spec: The model spec the adapter was trained on (``embedded``, ``hf:...``).
    """

    workspace: Workspace
    name: str
    folder: Path
    manifest: Manifest
    base_source: str
    base_spec: str

    @property
    def version(self) -> int:
        """The adapter version (`ragtune.adapters`)."""
        return self.manifest.version

    @property
    def on_embedded_model(self) -> bool:
        """Whether the base model is ragtune's embedded one, whose GGUF file ragtune has."""
        return ModelSpec.parse(self.base_spec).kind == "embedded"


def find_adapter(path: str | Path, adapter: str = "default") -> FoundAdapter:
    """The adapter `adapter` of the workspace at `path`, once the base model it was trained on
    is found here with the same weights (a stage killed while publishing is finished first).

    Raises:
        RagtuneError: there is no such adapter, or it was trained on other base weights.
        ModelNotAvailableError: the base model cannot be found.
    """
    workspace = Workspace.at(path)
    settle(workspace)  # a stage killed while publishing: finish it first
    versions = AdapterVersions(workspace, adapter)
    with contextlib.suppress(OSError):  # (a read-only workspace: read what is there)
        versions.repair()  # a version switch cut short: finish it
    folder = workspace.adapter_path(adapter)
    if not folder.is_dir():
        raise RagtuneError(f"has no adapter {adapter!r}; run `ragtune train`", path=path)
    manifest = Manifest.read(folder)
    spec = manifest.base_model.get("spec") or load_config(workspace.config_path).base_model
    source, found = model_weights(spec)
    wanted = manifest.base_model.get("weights_sha256")
    if found != wanted:
        raise RagtuneError(
            f"adapter {adapter!r} was trained on {spec} with weights sha256 "
            f"{str(wanted)[:12]}…, but the model there now has {found[:12]}…; retrain it "
            "(`ragtune train`) or restore that base model",
            path=folder,
        )
    if versions.current() not in (None, manifest.version):
        raise RagtuneError(
            f"holds adapter version v{manifest.version}, not v{versions.current()} as its "
            "folder name says: the version folders were mixed up; run `ragtune adapters use` "
            "or train again",
            path=folder,
        )
    return FoundAdapter(workspace, adapter, folder, manifest, source, spec)


class MemoryModel:
    """A base model with a memory adapter, answering from memory.

    Build it with `MemoryModel.from_workspace`. When the workspace's adapter moves to another
    version (`ragtune train --update`, `ragtune adapters use`), the model loads that version
    before its next answer (between answers, under its lock); `version` says which answered.

    Args:
        backend: The base model with the adapter applied (a `TransformersBackend`).
        workspace: The memory's workspace (its text units ground recollections).
        manifest: The adapter's manifest.
        adapter: The adapter's name in the workspace.
        follow_versions: Load the adapter's current version before each answer when it
            changed (False: keep the version loaded first).
    """

    def __init__(
        self,
        backend: Any,
        workspace: Workspace,
        manifest: Manifest,
        *,
        adapter: str = "default",
        follow_versions: bool = True,
    ) -> None:
        self.backend = backend
        self.workspace = workspace
        self.manifest = manifest
        self.adapter = adapter
        self.follow_versions = follow_versions
        self._versions = AdapterVersions(workspace, adapter)
        #: A version found unusable when following: not tried again until another is current.
        self._unusable: int | None = None
        self.usage = TokenUsage()
        self.last_usage = TokenUsage()
        #: Held while the model generates: a model shared between threads answers one
        #: request at a time (a stream may be read from several threads, so not an RLock).
        self.lock = threading.Lock()
        #: The workspace's text units, which recollections are grounded in.
        self.sources = SourcePassages(workspace)

    @classmethod
    def from_workspace(
        cls,
        path: str | Path,
        adapter: str = "default",
        *,
        device: str = "auto",
        dtype: str = "auto",
        follow_versions: bool = True,
    ) -> MemoryModel:
        """Load the base model of the workspace at `path` with its adapter `adapter` (its
        current version; see the class for `follow_versions`).

        Raises:
            RagtuneError: there is no such adapter, or it was trained on other base weights.
            ModelNotAvailableError: the base model cannot be loaded.
        """
        from ragtune.llm.transformers_backend import TransformersBackend

        found = find_adapter(path, adapter)
        backend = TransformersBackend(
            found.base_source,
            name=f"{Path(found.base_source).name}+{adapter}",
            device=device,
            dtype=dtype,
            adapter=found.folder,
        )
        return cls(
            backend,
            found.workspace,
            found.manifest,
            adapter=adapter,
            follow_versions=follow_versions,
        )

    @property
    def version(self) -> int:
        """The adapter version answering (``manifest.version``)."""
        return self.manifest.version

    def refresh(self) -> bool:
        """Load the adapter's current version if it is not the one loaded; returns whether it
        loaded one. Call it between answers (the answering methods do, under the lock).

        Raises:
            RagtuneError: the new version is unusable (the loaded one keeps answering).
        """
        current = self._versions.current()
        if current is None or current == self.manifest.version:
            return False
        found = find_adapter(self.workspace.root, self.adapter)
        # The version folder itself, and its manifest read from there: the name may be
        # switched again at any moment, and the weights loaded must be the manifest's.
        folder = found.folder.resolve()
        manifest = Manifest.read(folder)
        if manifest.version != found.manifest.version:
            return False  # switched again meanwhile: the next answer loads that one
        if manifest.version == self.manifest.version:
            return False
        self.backend.swap_adapter(folder)
        self.manifest = manifest
        self._unusable = None
        log.info("memory %s: now answering with adapter version v%d", self.adapter, self.version)
        return True

    def _follow(self) -> None:
        """`refresh` before an answer, when following versions; a version that cannot be
        loaded is reported once (a warning) and the loaded one keeps answering."""
        if not self.follow_versions:
            return
        current = self._versions.current()
        if current is None or current == self._unusable:
            return
        try:
            self.refresh()
        except (RagtuneError, OSError) as error:
            self._unusable = current
            log.warning(
                "memory %s: adapter version v%d cannot be loaded (%s); still answering with v%d",
                self.adapter,
                current,
                error,
                self.version,
            )

    @property
    def model_name(self) -> str:
        """The base model and adapter, as ``<base>+<adapter>``."""
        return str(self.backend.model_name)

    def answer(self, question: str, *, max_new_tokens: int = 256, temperature: float = 0.0) -> str:
        """The model's answer to `question`, from memory."""
        return self.chat(
            answer_messages(question),
            max_new_tokens=max_new_tokens,
            temperature=temperature,
        )

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> str:
        """The model's next turn in the conversation `messages`."""
        return self.reply(
            messages, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        ).text

    def reply(
        self,
        messages: Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Reply:
        """Like `chat`, with the tokens this very call read and wrote (`last_usage` may already
        be another thread's)."""
        params = GenerationParams(
            max_tokens=max_new_tokens, temperature=temperature, stop=tuple(stop)
        )
        with self.lock:
            self._follow()
            response = self.backend.chat(memory_messages(messages), params=params)
            answered = self.version
            self._count(response.usage)
        return Reply(str(response.text), response.usage, answered)

    def stream(
        self,
        question: str | Sequence[Message],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_usage: Callable[[TokenUsage], None] | None = None,
    ) -> Iterator[str]:
        """The answer to `question` (or the next turn of a conversation), piece by piece as
        the model generates it; the pieces join to what `answer` (or `chat`) returns.
        `on_usage` receives the tokens read and written once generation ends.

        Raises:
            BackendError: the prompt and `max_new_tokens` do not fit the context window.
        """
        with self.lock:
            self._follow()
            yield from self._stream(question, max_new_tokens, temperature, on_usage)

    def _stream(
        self,
        question: str | Sequence[Message],
        max_new_tokens: int,
        temperature: float,
        on_usage: Callable[[TokenUsage], None] | None,
    ) -> Iterator[str]:
        messages = memory_messages(
            answer_messages(question) if isinstance(question, str) else question
        )
        params = GenerationParams(max_tokens=max_new_tokens, temperature=temperature)

        def counted(used: TokenUsage) -> None:
            self._count(used)
            if on_usage is not None:
                on_usage(used)

        yield from stripped_pieces(self.backend.stream(messages, params, on_usage=counted))

    def recall(self, question: str, k: int = 3, *, max_new_tokens: int = 256) -> list[Recollection]:
        """Up to `k` source passages for `question`: the model recalls, then what it wrote is
        matched (BM25, together with the question) to the workspace's text units."""
        recalled = self.answer(recall_question(question), max_new_tokens=max_new_tokens)
        return self.sources.find(recalled, question, k)

    def _count(self, usage: TokenUsage) -> None:
        self.last_usage = usage
        self.usage = self.usage + usage
