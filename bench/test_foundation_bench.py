"""Benchmarks of the foundation: ingesting LoCoMo, loading and running the embedded model.

`make bench` times them (pytest-benchmark); `make test` runs each once as a smoke test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


def test_ingest_locomo_dev(benchmark: Any, embedded_model: Any, locomo_dev: Path) -> None:
    """Load the three LoCoMo dev conversations and chunk them with the embedded tokenizer."""
    from ragtune.corpus import chunk_documents, load_corpus
    from ragtune.llm.tokenizer import load_tokenizer

    def ingest() -> tuple[int, int, int]:
        documents = load_corpus(locomo_dev)
        units = chunk_documents(documents, load_tokenizer("embedded"), size=500, overlap=100)
        return len(documents), len(units), sum(u.n_tokens for u in units)

    documents, units, tokens = benchmark.pedantic(ingest, rounds=3, iterations=1)
    benchmark.extra_info.update(documents=documents, text_units=units, tokens=tokens)
    assert documents == 70
    assert units > documents


def test_load_embedded_backend_from_cache(benchmark: Any, embedded_model: Any) -> None:
    """Load the already-converted embedded model (the second-and-later load)."""
    from ragtune.llm import load_backend

    backend = benchmark.pedantic(lambda: load_backend("embedded"), rounds=3, iterations=1)
    assert backend.model_name == "SmolLM2-135M-Instruct"


def test_embedded_greedy_decoding(benchmark: Any, embedded_model: Any) -> None:
    """Greedy decoding of 64 new tokens, batch of one; reports tokens per second."""
    from ragtune.llm import ChatRequest, GenerationParams, load_backend

    backend = load_backend("embedded")
    request = ChatRequest(
        [{"role": "user", "content": "Write a long story about a kayak club in Lisbon."}],
        GenerationParams(max_tokens=64),
    )
    response = benchmark.pedantic(lambda: backend.chat_batch([request])[0], rounds=3, iterations=1)
    tokens = response.usage.completion_tokens
    benchmark.extra_info["completion_tokens"] = tokens
    if benchmark.stats is not None:  # None when benchmarks are disabled (`make test`)
        benchmark.extra_info["tokens_per_second"] = tokens / benchmark.stats.stats.mean
    assert tokens > 0
