"""TransformersBackend with a real tiny random Llama chat model (CPU, offline)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ragtune.errors import BackendError, ModelNotAvailableError
from ragtune.llm import (
    BackendStats,
    ChatBackend,
    ChatRequest,
    GenerationParams,
    Message,
    TokenUsage,
    load_backend,
)
from ragtune.llm.transformers_backend import TransformersBackend, accepts_system_message
from ragtune.prompts import memory_messages
from ragtune.testing import build_tiny_chat_model

PROMPTS = [
    "hi",
    "What did Caroline do on 7 May 2023?",
    "The quick brown fox jumps over the lazy dog. Melanie painted a sunrise by the lake. "
    "What did they talk about? They talked about adoption, painting and camping.",
    "x",
    "Melanie painted a sunrise.",
]


def user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> TransformersBackend:
    """The tiny model, loaded once for the module (its stats are shared: do not assert them)."""
    loaded = load_backend(f"hf:{tiny_model_dir}", device="cpu")
    assert isinstance(loaded, TransformersBackend)
    return loaded


@pytest.fixture
def fresh_backend(tiny_model_dir: Path) -> TransformersBackend:
    """A new instance of the tiny model, with zeroed stats."""
    return TransformersBackend(tiny_model_dir, device="cpu")


def prompt_token_count(backend: TransformersBackend, messages: list[Message]) -> int:
    rendered = backend.render_prompt(messages)
    return len(backend.tokenizer(rendered, add_special_tokens=False)["input_ids"])


def test_backend_satisfies_chat_backend_protocol(backend: TransformersBackend) -> None:
    assert isinstance(backend, ChatBackend)


def test_model_name_is_the_folder_name_and_fingerprint_names_the_folder(
    backend: TransformersBackend, tiny_model_dir: Path
) -> None:
    assert backend.model_name == tiny_model_dir.name
    assert backend.fingerprint.startswith(f"hf:{tiny_model_dir.resolve()}#")


def test_greedy_decoding_is_deterministic(backend: TransformersBackend) -> None:
    params = GenerationParams(max_tokens=24)
    first = backend.chat(user(PROMPTS[1]), params=params)
    second = backend.chat(user(PROMPTS[1]), params=params)
    assert first.text
    assert first.text == second.text
    assert first.usage == second.usage


def test_chat_response_reports_the_model_name(backend: TransformersBackend) -> None:
    response = backend.chat(user("hi"), params=GenerationParams(max_tokens=4))
    assert response.model == backend.model_name
    assert response.parsed is None
    assert response.error is None
    assert response.cached is False


def test_chat_batch_equals_one_by_one_for_prompts_of_different_lengths(
    backend: TransformersBackend,
) -> None:
    params = GenerationParams(max_tokens=20)
    requests = [ChatRequest(user(prompt), params) for prompt in PROMPTS]
    lengths = {prompt_token_count(backend, list(r.messages)) for r in requests}
    assert len(lengths) == len(PROMPTS)  # every prompt pads differently

    batched = backend.chat_batch(requests)
    single = [backend.chat(list(r.messages), params=params) for r in requests]

    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.usage for r in batched] == [r.usage for r in single]
    assert [r.finish_reason for r in batched] == [r.finish_reason for r in single]


def test_chat_batch_with_mixed_params_and_small_batches_keeps_order(tiny_model_dir: Path) -> None:
    small_batches = TransformersBackend(tiny_model_dir, device="cpu", batch_size=2)
    requests = [
        ChatRequest(user(prompt), GenerationParams(max_tokens=6 if i % 2 else 10))
        for i, prompt in enumerate(PROMPTS)
    ]
    batched = small_batches.chat_batch(requests)
    single = [small_batches.chat(list(r.messages), params=r.params) for r in requests]
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.usage.completion_tokens for r in batched] == [10, 6, 10, 6, 10]


@pytest.mark.parametrize("max_tokens", [1, 3, 7])
def test_max_tokens_is_respected_and_reported_as_length(
    backend: TransformersBackend, max_tokens: int
) -> None:
    response = backend.chat(user(PROMPTS[1]), params=GenerationParams(max_tokens=max_tokens))
    assert response.usage.completion_tokens <= max_tokens
    # The random model does not emit end-of-sequence this early: it hits the limit.
    assert response.usage.completion_tokens == max_tokens
    assert response.finish_reason == "length"


@pytest.mark.parametrize("prompt", PROMPTS[:3])
def test_prompt_tokens_equal_the_rendered_prompt_token_count(
    backend: TransformersBackend, prompt: str
) -> None:
    messages = [Message(role="system", content="Be brief."), *user(prompt)]
    response = backend.chat(messages, params=GenerationParams(max_tokens=2))
    assert response.usage.prompt_tokens == prompt_token_count(backend, messages)


def test_prompt_tokens_in_a_padded_batch_exclude_padding(backend: TransformersBackend) -> None:
    params = GenerationParams(max_tokens=2)
    responses = backend.chat_batch([ChatRequest(user(p), params) for p in PROMPTS])
    assert [r.usage.prompt_tokens for r in responses] == [
        prompt_token_count(backend, user(p)) for p in PROMPTS
    ]


def test_render_prompt_applies_the_chatml_template(backend: TransformersBackend) -> None:
    rendered = backend.render_prompt(
        [Message(role="system", content="S"), Message(role="user", content="U")]
    )
    assert rendered == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n" + (
        "<|im_start|>assistant\n"
    )


def _stop_string_in_the_middle(text: str) -> tuple[str, int]:
    """A 3-letter ASCII substring whose first occurrence lies in the middle of `text`."""
    for start in range(len(text) // 3, len(text) - 3):
        candidate = text[start : start + 3]
        if re.fullmatch(r"[A-Za-z]{3}", candidate) and text.find(candidate) == start:
            return candidate, start
    raise AssertionError(f"no usable stop string in {text!r}")


@pytest.mark.parametrize("prompt", [PROMPTS[0], PROMPTS[1]])
def test_stop_string_cuts_the_answer_before_it(backend: TransformersBackend, prompt: str) -> None:
    unstopped = backend.chat(user(prompt), params=GenerationParams(max_tokens=40)).text
    stop, where = _stop_string_in_the_middle(unstopped)
    assert where > 0

    stopped = backend.chat(user(prompt), params=GenerationParams(max_tokens=40, stop=(stop,)))

    assert stopped.text == unstopped[:where].strip()
    assert stop not in stopped.text
    assert stopped.finish_reason == "stop"
    assert stopped.usage.completion_tokens < 40


def test_stop_strings_cut_at_the_earliest_of_several(backend: TransformersBackend) -> None:
    unstopped = backend.chat(user(PROMPTS[0]), params=GenerationParams(max_tokens=40)).text
    stop, where = _stop_string_in_the_middle(unstopped)
    later = unstopped[-3:]
    stopped = backend.chat(
        user(PROMPTS[0]), params=GenerationParams(max_tokens=40, stop=("never-there", stop, later))
    )
    assert stopped.text == unstopped[:where].strip()


def test_chat_batch_usage_equals_single_with_stop_string(backend: TransformersBackend) -> None:
    """A row stopped by a stop string while another row goes on is padded; the padding must not
    be counted as a generated token, so batched usage equals the one-by-one usage."""
    unstopped = backend.chat(user(PROMPTS[0]), params=GenerationParams(max_tokens=40)).text
    stop, _ = _stop_string_in_the_middle(unstopped)
    params = GenerationParams(max_tokens=40, stop=(stop,))
    requests = [ChatRequest(user(PROMPTS[0]), params), ChatRequest(user(PROMPTS[1]), params)]
    single = [backend.chat(list(r.messages), params=params) for r in requests]
    assert single[0].finish_reason == "stop"
    assert single[1].usage.completion_tokens > single[0].usage.completion_tokens

    batched = backend.chat_batch(requests)

    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.usage for r in batched] == [r.usage for r in single]


def test_sampling_with_the_same_seed_repeats(backend: TransformersBackend) -> None:
    params = GenerationParams(max_tokens=20, temperature=1.0, seed=1)
    first = backend.chat(user(PROMPTS[1]), params=params)
    second = backend.chat(user(PROMPTS[1]), params=params)
    assert first.text == second.text


def test_sampling_with_different_seeds_differs(backend: TransformersBackend) -> None:
    texts = {
        backend.chat(
            user(PROMPTS[1]), params=GenerationParams(max_tokens=20, temperature=1.0, seed=seed)
        ).text
        for seed in (1, 2)
    }
    assert len(texts) == 2


def test_sampling_differs_from_greedy(backend: TransformersBackend) -> None:
    greedy = backend.chat(user(PROMPTS[1]), params=GenerationParams(max_tokens=20)).text
    sampled = backend.chat(
        user(PROMPTS[1]), params=GenerationParams(max_tokens=20, temperature=1.0, seed=1)
    ).text
    assert sampled != greedy


def test_stats_count_requests_model_calls_and_usage(fresh_backend: TransformersBackend) -> None:
    assert fresh_backend.stats == BackendStats()
    params = GenerationParams(max_tokens=3)
    batch = fresh_backend.chat_batch([ChatRequest(user(p), params) for p in PROMPTS[:3]])
    single = fresh_backend.chat(user("hello"), params=params)

    responses = [*batch, single]
    total = TokenUsage()
    for response in responses:
        total += response.usage
    assert fresh_backend.stats.requests == 4
    assert fresh_backend.stats.model_calls == 4
    assert fresh_backend.stats.usage == total
    assert total.completion_tokens == 12
    assert total.total_tokens == total.prompt_tokens + 12


@pytest.fixture(scope="module")
def small_context_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-64"), max_positions=64)


def test_prompt_beyond_the_context_window_raises_backend_error(small_context_dir: Path) -> None:
    small = TransformersBackend(small_context_dir, device="cpu")
    assert small.context_window == 64
    long_prompt = " ".join(["The quick brown fox jumps over the lazy dog."] * 10)
    with pytest.raises(BackendError, match="context window") as raised:
        small.chat(user(long_prompt), params=GenerationParams(max_tokens=4))
    assert "64-token" in str(raised.value)
    assert small.stats.model_calls == 0


def test_prompt_plus_max_tokens_beyond_the_window_raises(small_context_dir: Path) -> None:
    small = TransformersBackend(small_context_dir, device="cpu")
    messages = user("hi")
    fits = 64 - prompt_token_count(small, messages)
    assert small.chat(messages, params=GenerationParams(max_tokens=fits)).usage.prompt_tokens
    with pytest.raises(BackendError, match="context window"):
        small.chat(messages, params=GenerationParams(max_tokens=fits + 1))


def test_loading_a_missing_folder_raises_model_not_available(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="cannot load the model"):
        TransformersBackend(tmp_path / "no-such-model", device="cpu")


def test_load_backend_of_a_missing_folder_raises_model_not_available(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="no model folder there"):
        load_backend(f"hf:{tmp_path / 'no-such-model'}")


def test_loading_a_folder_without_a_model_raises_model_not_available(tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ModelNotAvailableError, match="holds no complete model"):
        TransformersBackend(empty, device="cpu")


def test_tokenizer_without_chat_template_uses_the_plain_template(tmp_path: Path) -> None:
    folder = build_tiny_chat_model(tmp_path / "base-model")
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    config_file.write_text(json.dumps(config), encoding="utf-8")

    base = TransformersBackend(folder, device="cpu")
    rendered = base.render_prompt(
        [Message(role="system", content="Be brief."), Message(role="user", content="Hello?")]
    )

    assert "<|im_start|>" not in rendered
    assert "System: Be brief." in rendered
    assert "User: Hello?" in rendered
    assert rendered.endswith("Assistant:")
    response = base.chat(user("Hello?"), params=GenerationParams(max_tokens=3))
    assert response.usage.prompt_tokens == prompt_token_count(base, user("Hello?"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be at least 1"),
        ({"temperature": -0.1}, "temperature must be 0 or more"),
        ({"top_p": 0.0}, "top_p must be in"),
        ({"top_p": 1.5}, "top_p must be in"),
    ],
)
def test_generation_params_reject_invalid_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerationParams(**kwargs)  # type: ignore[arg-type]


def test_generation_params_defaults_are_greedy_and_hashable() -> None:
    params = GenerationParams()
    assert params.temperature == 0.0
    assert params.max_tokens == 256
    assert params.stop == ()
    assert hash(params) == hash(GenerationParams())


def test_unknown_dtype_raises_backend_error(tiny_model_dir: Path) -> None:
    with pytest.raises(BackendError, match="unknown dtype"):
        TransformersBackend(tiny_model_dir, device="cpu", dtype="float7")


def test_a_template_that_refuses_system_messages_gets_their_text_in_the_first_question(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from support import model_without_system_role

    plain = TransformersBackend(str(tiny_model_dir))
    strict = TransformersBackend(str(model_without_system_role(tiny_model_dir, tmp_path / "m")))
    assert accepts_system_message(plain.tokenizer)
    assert not accepts_system_message(strict.tokenizer)
    briefed = [Message(role="system", content="Be brief."), *user("Hi")]
    assert strict.render_prompt(briefed) == plain.render_prompt(user("Be brief.\n\nHi"))
    # The tuned model's empty system message is dropped there, and kept where it is accepted.
    asked = memory_messages(user("Hi"))
    assert strict.render_prompt(asked) == plain.render_prompt(user("Hi"))
    assert plain.render_prompt(asked) == "<|im_start|>system\n<|im_end|>\n" + plain.render_prompt(
        user("Hi")
    )
