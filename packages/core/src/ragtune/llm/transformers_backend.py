"""`TransformersBackend`: a local Hugging Face causal LM answering chats, batched."""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import BackendError, ContextLengthError, ModelNotAvailableError
from ragtune.hashing import canonical_json, content_hash
from ragtune.llm.base import BaseChatBackend, Completion, cut_at_stop
from ragtune.llm.types import ChatRequest, GenerationParams, Message, TokenUsage
from ragtune.logs import hide_kernels_warning

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

# Used only for models whose tokenizer has no chat template (base models).
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}"
    "\n\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)


class TransformersBackend(BaseChatBackend):
    """A local causal LM (any `AutoModelForCausalLM`) behind the `ChatBackend` protocol.

    Requests are grouped by decoding parameters, sorted by length and generated in left-padded
    batches. Greedy when `temperature` is 0, sampled otherwise (seeded by `seed`).

    Args:
        model: A model folder or a Hugging Face repo id (downloaded only if not cached).
        name: The model name to report; default the folder name or repo id.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ...
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU) or a torch dtype name.
        batch_size: The most requests generated together.
        fingerprint: Cache identity of the weights; default derived from the model files.
        structured_retries: See `BaseChatBackend`.
        adapter: A PEFT (LoRA) adapter folder to apply on top of the model, or None.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        fingerprint: str | None = None,
        structured_retries: int = 2,
        adapter: str | Path | None = None,
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        import torch

        self.source = str(model)
        self.batch_size = batch_size
        self.device = torch.device(_pick_device(device))
        self.model, self.tokenizer = _load(
            self.source, self.device, _pick_dtype(dtype, self.device)
        )
        if adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, str(adapter)).to(self.device)
            self.model.eval()
        self._name = name or (Path(self.source).name if Path(self.source).is_dir() else self.source)
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = {*(eos if isinstance(eos, list) else [eos]), self.tokenizer.eos_token_id}
        self._eos_ids.discard(None)
        self._fingerprint = fingerprint or _model_fingerprint(self.source)
        self._accepts_system: bool | None = None  # probed on the first prompt
        if adapter is not None:
            self._fingerprint += "+" + _model_fingerprint(str(adapter))

    def swap_adapter(self, adapter: str | Path) -> None:
        """Replace the PEFT adapter the model runs with by the one in the folder `adapter`
        (loaded beside it, switched to, then the old one deleted). Call it between
        generations, never during one.

        Raises:
            ValueError: the model was loaded without an adapter.
        """
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            raise ValueError("this model was loaded without an adapter to replace")
        old = self.model.active_adapter
        new = f"{old.split('@')[0]}@{content_hash(str(adapter), _model_fingerprint(str(adapter)))}"
        self.model.load_adapter(str(adapter), adapter_name=new)
        self.model.set_adapter(new)
        self.model.delete_adapter(old)
        self.model.to(self.device)
        self.model.eval()
        self._fingerprint = f"{_model_fingerprint(self.source)}+{_model_fingerprint(str(adapter))}"

    @property
    def model_name(self) -> str:
        """The model's name, as reported in responses."""
        return self._name

    @property
    def fingerprint(self) -> str:
        """Identifies the model and its weights, for response cache keys."""
        return self._fingerprint

    @property
    def context_window(self) -> int | None:
        """The most tokens (prompt plus answer) the model attends to, if its config says."""
        value = getattr(self.model.config, "max_position_embeddings", None)
        return int(value) if value else None

    def render_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees for `messages`, chat template applied (a system
        message folded into the first user message where the template refuses one)."""
        if self._accepts_system is None:
            self._accepts_system = accepts_system_message(self.tokenizer)
        return render_chat(self.tokenizer, messages, accepts_system=self._accepts_system)

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        from ragtune.progress import progress_bar

        prompts = [
            self.tokenizer(self.render_prompt(r.messages), add_special_tokens=False)["input_ids"]
            for r in requests
        ]
        groups: dict[GenerationParams, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            self.check_fits(len(prompts[index]), request.params.max_tokens)
            groups[request.params].append(index)
        batches = []
        for params, indices in groups.items():
            indices.sort(key=lambda i: -len(prompts[i]))
            for start in range(0, len(indices), self.batch_size):
                batches.append((params, indices[start : start + self.batch_size]))
        results: list[Completion | None] = [None] * len(requests)
        for params, indices in progress_bar(
            batches, desc="generating", unit="batch", enabled=progress and len(batches) > 1
        ):
            completions = self._generate([prompts[i] for i in indices], params)
            for index, completion in zip(indices, completions, strict=True):
                results[index] = completion
        return [result for result in results if result is not None]

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> None:
        """Raise `ContextLengthError` (a `BackendError`) unless `prompt_tokens` plus
        `max_tokens` fit the context window."""
        window = self.context_window
        if window is not None and prompt_tokens + max_tokens > window:
            raise ContextLengthError(
                f"a prompt of {prompt_tokens} tokens plus max_tokens={max_tokens} exceeds the "
                f"{window}-token context window of {self.model_name}"
            )

    def stream(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        *,
        on_usage: Callable[[TokenUsage], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[str]:
        """The answer to `messages`, piece by piece as the model generates it (the pieces join
        to the raw text, whitespace included). `on_usage` receives the tokens read and written
        once generation ends; generation stops early once `cancelled()` returns True.

        Raises:
            BackendError: the prompt and `params.max_tokens` do not fit the context window.
        """
        import threading

        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        prompt = self.render_prompt(messages)
        inputs = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(
            self.device
        )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        self.check_fits(prompt_tokens, params.max_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        extra: dict[str, Any] = {}
        if params.stop:
            extra = {"stop_strings": list(params.stop), "tokenizer": self.tokenizer}
        if cancelled is not None:
            stop_now = cancelled

            class _Cancelled(StoppingCriteria):  # type: ignore[misc]
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.full(
                        (input_ids.shape[0],),
                        stop_now(),
                        dtype=torch.bool,
                        device=input_ids.device,
                    )

            extra["stopping_criteria"] = StoppingCriteriaList([_Cancelled()])
        if params.seed is not None:
            torch.manual_seed(params.seed)
        generated: list[int] = []
        failed: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    output = self.model.generate(
                        **inputs,
                        generation_config=self.generation_config(params),
                        streamer=streamer,
                        **extra,
                    )
                generated.append(int(output.shape[1]) - prompt_tokens)
            except BaseException as error:  # handed to the caller's thread below
                failed.append(error)
                streamer.end()

        worker = threading.Thread(target=generate, daemon=True)
        worker.start()
        yield from streamer
        worker.join()
        if failed:
            raise failed[0]
        if on_usage is not None:
            on_usage(TokenUsage(prompt_tokens, generated[0] if generated else 0))

    def _generate(self, prompts: list[list[int]], params: GenerationParams) -> list[Completion]:
        import torch

        inputs = self.tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        extra: dict[str, Any] = {}
        if params.stop:
            extra = {"stop_strings": list(params.stop), "tokenizer": self.tokenizer}
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, generation_config=self.generation_config(params), **extra
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        return [
            self._completion(row, int(used), params)
            for row, used in zip(new_tokens, prompt_tokens, strict=True)
        ]

    def generation_config(self, params: GenerationParams) -> Any:
        """The model's generation config set up for `params`."""
        config = copy.deepcopy(self.model.generation_config)
        sampling = params.temperature > 0
        config.do_sample = sampling
        config.max_new_tokens = params.max_tokens
        config.temperature = params.temperature if sampling else None
        config.top_p = params.top_p if sampling else None
        config.top_k = None
        config.pad_token_id = self.tokenizer.pad_token_id
        if config.eos_token_id is None:
            config.eos_token_id = self.tokenizer.eos_token_id
        return config

    def _completion(
        self, row: torch.Tensor, prompt_tokens: int, params: GenerationParams
    ) -> Completion:
        eos_ids = self._eos_ids
        tokens = row.tolist()
        # A row that finished before the others is padded; padding ends it like end-of-sequence.
        ended = next(
            (i for i, t in enumerate(tokens) if t in eos_ids or t == self.tokenizer.pad_token_id),
            None,
        )
        if ended is not None:
            tokens = tokens[:ended]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, params.stop)
        # The end-of-sequence token counts as generated, padding after a stop string does not.
        generated_eos = ended is not None and not stopped and row[ended].item() in eos_ids
        finished = ended is not None or stopped or len(tokens) < params.max_tokens
        return Completion(
            text=text.strip(),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens) + int(generated_eos),
            finish_reason="stop" if finished else "length",
        )


def _pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise BackendError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16")
    return value


def _load(source: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
    hide_kernels_warning()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as error:  # transformers 5 raises ValueError for empty folders
        hint = (
            "no model folder there"
            if not Path(source).is_dir()
            else "the folder holds no complete model"
        )
        raise ModelNotAvailableError(
            f"cannot load the model {source!r}: {hint}, and it is not in the Hugging Face cache "
            f"(the hub is only contacted when it can be reached) ({error.__class__.__name__})"
        ) from None
    model.to(device).eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        logger.warning("%s has no chat template; using a plain 'Role: text' template", source)
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
    return model, tokenizer


def render_chat(tokenizer: Any, messages: Sequence[Message], *, accepts_system: bool) -> str:
    """The prompt text `tokenizer`'s chat template makes of `messages`, ready for the
    assistant's turn (a system message folded into the first user message unless
    `accepts_system`)."""
    chat = messages if accepts_system else without_system(messages)
    rendered = tokenizer.apply_chat_template(
        [dict(m) for m in chat], add_generation_prompt=True, tokenize=False
    )
    return str(rendered)


def without_system(messages: Sequence[Message]) -> list[Message]:
    """`messages` for a chat template that refuses a system message: its text (if any) put
    before the first user message's."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"].strip(), list(messages[1:])
    first = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if system and first is not None:
        rest[first] = Message(role="user", content=f"{system}\n\n{rest[first]['content']}")
    elif system:
        rest.insert(0, Message(role="user", content=system))
    return rest


def accepts_system_message(tokenizer: Any) -> bool:
    """Whether `tokenizer`'s chat template renders a system message (Gemma's, for one, raises
    an error on it)."""
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    try:
        tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:  # jinja2's TemplateError, or whatever the template raises
        return False
    return True


def _model_fingerprint(source: str) -> str:
    """The folder's config plus its weight files' names, sizes and times; else the repo id."""
    folder = Path(source)
    if not folder.is_dir():
        return f"hf:{source}"
    parts = (
        [(folder / "config.json").read_text(encoding="utf-8")]
        if (folder / "config.json").is_file()
        else []
    )
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        stat = path.stat()
        parts.append(canonical_json([path.name, stat.st_size, stat.st_mtime_ns]))
    return f"hf:{folder.resolve()}#{content_hash(*parts)}"
