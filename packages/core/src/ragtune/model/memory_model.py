"""`MemoryModel`: the tuned model — base model plus the workspace's adapter — answering questions
about the memory with no retrieval, and recalling the passages its answers come from.

`recall` asks the model the way Recall QA trained it (`ragtune.prompts.recall_question`) and
grounds what it writes to the workspace's text units with BM25, so a recollection is always a
real source passage (its text, metadata and a match score), never the model's invention.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.config import load_config
from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.corpus.types import Document, TextUnit
from ragtune.errors import RagtuneError
from ragtune.llm.types import GenerationParams, Message, TokenUsage
from ragtune.llm.weights import model_weights
from ragtune.manifest import Manifest
from ragtune.model.bm25 import BM25
from ragtune.prompts import answer_messages, memory_messages, recall_question
from ragtune.stages import settle
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class Recollection:
    """A source passage the model recalled.

    Attributes:
        text: The text unit's real text.
        unit_id: The text unit.
        document_id: Its document.
        source: Where the document came from (``notes/trip.md``, ``locomo.json#conv-26/...``).
        timestamp: When it was written (ISO 8601), or None.
        turn_ids: The conversation turns it holds (LoCoMo ``dia_id``s).
        score: How well it matches what the model recalled (BM25).
        recalled: What the model wrote when asked to recall.
    """

    text: str
    unit_id: str
    document_id: str
    source: str
    timestamp: str | None
    turn_ids: tuple[str, ...]
    score: float
    recalled: str

    def metadata(self) -> dict[str, Any]:
        """What the integrations attach to a recalled passage: where it comes from, when it
        was written, the turns it holds and what the model recalled."""
        return {
            "source": self.source,
            "timestamp": self.timestamp,
            "unit_id": self.unit_id,
            "document_id": self.document_id,
            "turn_ids": list(self.turn_ids),
            "recalled": self.recalled,
        }


@dataclass(frozen=True)
class Reply:
    """A model's answer and the tokens it read (`usage.prompt_tokens`) and wrote."""

    text: str
    usage: TokenUsage


def _stripped(pieces: Iterable[str]) -> Iterator[str]:
    """`pieces` without the whitespace at the start and end of their concatenation (as
    `answer` strips it), passed on as soon as it is known not to be trailing."""
    pending = ""
    started = False
    for piece in pieces:
        text = pending + piece
        if not started:
            text = text.lstrip()
            started = bool(text)
        kept = text.rstrip()
        pending = text[len(kept) :]
        if kept:
            yield kept


class MemoryModel:
    """A base model with a memory adapter, answering from memory.

    Build it with `MemoryModel.from_workspace`.

    Args:
        backend: The base model with the adapter applied (a `TransformersBackend`).
        workspace: The memory's workspace (its text units ground recollections).
        manifest: The adapter's manifest.
    """

    def __init__(self, backend: Any, workspace: Workspace, manifest: Manifest) -> None:
        self.backend = backend
        self.workspace = workspace
        self.manifest = manifest
        self.usage = TokenUsage()
        self.last_usage = TokenUsage()
        #: Held while the model generates: a model shared between threads answers one
        #: request at a time (a stream may be read from several threads, so not an RLock).
        self.lock = threading.Lock()
        self._units: list[TextUnit] | None = None
        self._documents_by_id: dict[str, Document] | None = None
        self._bm25: BM25 | None = None

    @classmethod
    def from_workspace(
        cls,
        path: str | Path,
        adapter: str = "default",
        *,
        device: str = "auto",
        dtype: str = "auto",
    ) -> MemoryModel:
        """Load the base model of the workspace at `path` with its adapter `adapter`.

        Raises:
            RagtuneError: there is no such adapter, or it was trained on other base weights.
            ModelNotAvailableError: the base model cannot be loaded.
        """
        from ragtune.llm.transformers_backend import TransformersBackend

        workspace = Workspace.at(path)
        settle(workspace)  # a stage killed while publishing: finish it first
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
        backend = TransformersBackend(
            source,
            name=f"{Path(source).name}+{adapter}",
            device=device,
            dtype=dtype,
            adapter=folder,
        )
        return cls(backend, workspace, manifest)

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
            response = self.backend.chat(memory_messages(messages), params=params)
            self._count(response.usage)
        return Reply(str(response.text), response.usage)

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
            yield from self._stream(question, max_new_tokens, temperature, on_usage)

    def _stream(
        self,
        question: str | Sequence[Message],
        max_new_tokens: int,
        temperature: float,
        on_usage: Callable[[TokenUsage], None] | None,
    ) -> Iterator[str]:
        import torch
        from transformers import TextIteratorStreamer

        messages = memory_messages(
            answer_messages(question) if isinstance(question, str) else question
        )
        tokenizer = self.backend.tokenizer
        prompt = self.backend.render_prompt(messages)
        inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(
            self.backend.device
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        self.backend.check_fits(prompt_tokens, max_new_tokens)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        params = GenerationParams(max_tokens=max_new_tokens, temperature=temperature)
        config = self.backend.generation_config(params)
        generated: list[int] = []
        failed: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    output = self.backend.model.generate(
                        **inputs, generation_config=config, streamer=streamer
                    )
                generated.append(int(output.shape[1]) - prompt_tokens)
            except BaseException as error:  # handed to the caller's thread below
                failed.append(error)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        yield from _stripped(streamer)
        worker.join()
        if failed:
            raise failed[0]
        used = TokenUsage(prompt_tokens, generated[0] if generated else 0)
        self._count(used)
        if on_usage is not None:
            on_usage(used)

    def recall(self, question: str, k: int = 3, *, max_new_tokens: int = 256) -> list[Recollection]:
        """Up to `k` source passages for `question`: the model recalls, then what it wrote is
        matched (BM25, together with the question) to the workspace's text units."""
        recalled = self.answer(recall_question(question), max_new_tokens=max_new_tokens)
        units = self._text_units()
        bm25 = self._index(units)
        documents = self._documents()
        found = []
        for index, score in bm25.top(f"{recalled}\n{question}", k):
            unit = units[index]
            document = documents.get(unit.document_id)
            found.append(
                Recollection(
                    text=unit.text,
                    unit_id=unit.id,
                    document_id=unit.document_id,
                    source=document.source if document else "",
                    timestamp=unit.timestamp,
                    turn_ids=unit.turn_ids,
                    score=round(score, 4),
                    recalled=recalled,
                )
            )
        return found

    def _count(self, usage: TokenUsage) -> None:
        self.last_usage = usage
        self.usage = self.usage + usage

    def _text_units(self) -> list[TextUnit]:
        if self._units is None:
            self._units = read_text_units(self.workspace.text_units_path)
        return self._units

    def _documents(self) -> dict[str, Document]:
        if self._documents_by_id is None:
            documents = read_documents(self.workspace.documents_path)
            self._documents_by_id = {document.id: document for document in documents}
        return self._documents_by_id

    def _index(self, units: list[TextUnit]) -> BM25:
        if self._bm25 is None:
            self._bm25 = BM25([unit.text for unit in units])
        return self._bm25
