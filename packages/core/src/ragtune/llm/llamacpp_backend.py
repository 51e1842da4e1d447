"""`LlamaCppBackend`: a GGUF base model run by llama.cpp (llama-cpp-python), with LoRA adapters
in llama.cpp's GGUF format switched on per request — the CPU engine of ``ragtune serve --engine
llama.cpp``. Prompts are rendered with the transformers tokenizer and chat template of the same
model, so llama.cpp reads exactly the text the transformers path reads. Every prompt is evaluated
from an empty cache: reusing the cached prefix of the previous prompt evaluates the rest in
another split, whose rounding flipped near-tie greedy answers between identical requests."""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import BackendError, ContextLengthError
from ragtune.hashing import content_hash
from ragtune.llm.base import BaseChatBackend, Completion
from ragtune.llm.transformers_backend import accepts_system_message, render_chat
from ragtune.llm.types import ChatRequest, GenerationParams, Message, TokenUsage


class LlamaCppBackend(BaseChatBackend):
    """llama.cpp generating from `base_gguf`, prompts rendered by the tokenizer in `tokenizer_dir`.

    Args:
        base_gguf: The base model's GGUF file.
        tokenizer_dir: A transformers folder of the same model (its tokenizer and chat template).
        name: The model's name in responses.
        context_window: Tokens of context llama.cpp allocates (prompt plus answer).
        threads: CPU threads llama.cpp computes with.
    """

    def __init__(
        self,
        base_gguf: str | Path,
        tokenizer_dir: str | Path,
        *,
        name: str,
        context_window: int = 2048,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        import os

        import llama_cpp
        from transformers import AutoTokenizer

        self._name = name
        self.base_gguf = Path(base_gguf)
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        self._accepts_system = accepts_system_message(self.tokenizer)
        self.llama: Any = llama_cpp.Llama(
            model_path=str(self.base_gguf),
            n_ctx=context_window,
            n_threads=threads or os.cpu_count() or 1,
            verbose=False,
        )
        self._adapters: dict[str, Any] = {}
        self._active: str | None = None
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        """The model's name, as reported in responses."""
        return self._name

    @property
    def fingerprint(self) -> str:
        """The GGUF file's name and size with the loaded adapters (for cache keys)."""
        size = str(self.base_gguf.stat().st_size)
        return content_hash("llama.cpp", self.base_gguf.name, size, *sorted(self._adapters))

    @property
    def context_window(self) -> int:
        """The tokens of context llama.cpp allocated."""
        return int(self.llama.n_ctx())

    def add_adapter(self, name: str, path: str | Path) -> None:
        """Load the LoRA GGUF file `path` as the adapter `name` (off until `active`)."""
        import llama_cpp

        adapter = llama_cpp.llama_adapter_lora_init(self.llama.model, str(path).encode("utf-8"))
        if not adapter:
            raise BackendError(f"llama.cpp could not load the LoRA adapter {path}")
        self._adapters[name] = adapter

    @contextlib.contextmanager
    def active(self, adapter: str | None) -> Iterator[None]:
        """Generate with the adapter `adapter` on (None: the base model) while inside."""
        with self._lock:
            if adapter != self._active:
                self._switch(adapter)
            yield

    def _switch(self, adapter: str | None) -> None:
        import llama_cpp

        if adapter is None:
            failed = llama_cpp.llama_set_adapters_lora(self.llama.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[adapter])
            scales = (ctypes.c_float * 1)(1.0)
            failed = llama_cpp.llama_set_adapters_lora(self.llama.ctx, adapters, 1, scales)
        if failed:
            raise BackendError(f"llama.cpp could not switch to adapter {adapter!r}")
        self._active = adapter  # no cache to drop: every prompt is evaluated afresh

    def render_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text for `messages`, chat template applied (as `TransformersBackend`)."""
        return render_chat(self.tokenizer, messages, accepts_system=self._accepts_system)

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        """Raise `ContextLengthError` unless the prompt and answer fit the context."""
        if prompt_tokens + max_tokens > self.context_window:
            raise ContextLengthError(
                f"a prompt of {prompt_tokens} tokens plus max_tokens={max_tokens} exceeds the "
                f"{self.context_window}-token context llama.cpp was given"
            )

    def _prompt_tokens(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _options(self, params: GenerationParams) -> dict[str, Any]:
        stop = [*params.stop, *self._end_strings()]
        options: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": stop,
        }
        if params.temperature == 0:
            options["top_k"] = 1
        if params.seed is not None:
            options["seed"] = params.seed
        return options

    def _end_strings(self) -> list[str]:
        token = self.tokenizer.eos_token
        return [token] if isinstance(token, str) and token else []

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        out = []
        for request in requests:
            prompt = self.render_prompt(request.messages)
            tokens = self._prompt_tokens(prompt)
            self.check_fits(len(tokens), request.params.max_tokens)
            self.llama.reset()
            reply = self.llama.create_completion(tokens, **self._options(request.params))
            choice = reply["choices"][0]
            out.append(
                Completion(
                    text=str(choice["text"]),
                    prompt_tokens=len(tokens),
                    completion_tokens=int(reply["usage"]["completion_tokens"]),
                    finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
                )
            )
        return out

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        on_usage: Callable[[TokenUsage], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """The answer to `messages` piece by piece (see `TransformersBackend.stream`)."""
        tokens = self._prompt_tokens(self.render_prompt(messages))
        self.check_fits(len(tokens), params.max_tokens)
        written = 0
        self.llama.reset()
        pieces = self.llama.create_completion(tokens, stream=True, **self._options(params))
        for chunk in pieces:
            if chunk["choices"][0]["finish_reason"] is not None:  # the closing marker, no token
                break
            written += 1
            text = str(chunk["choices"][0]["text"])
            if text:
                yield text
            if cancelled is not None and cancelled():
                break
        if on_usage is not None:
            on_usage(TokenUsage(len(tokens), written))
