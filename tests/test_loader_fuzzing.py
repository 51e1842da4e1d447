"""Fuzzing the loaders of what users hand us (hypothesis, a bounded number of examples each):
JSONL corpora, LoCoMo JSON, Markdown front matter, memory.yaml, training data and question
files. Whatever the bytes, a loader returns or raises a `RagtuneError` — never another
exception, which the command line would report as a bug."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ragtune.config import load_config
from ragtune.corpus import load_corpus
from ragtune.errors import RagtuneError
from ragtune.eval.questions import load_questions
from ragtune.train.trainer import check_training_data
from support import minimal_locomo_record

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same examples on every run: CI fails only on a real change
)

#: JSON values, with the strings that trip decoders (lone surrogates, NULs, huge numbers).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text()
    | st.sampled_from(["\ud800", "\x00", "2024-13-45", "", " "]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def loaded(path: Path, loader: Any) -> None:
    """Run `loader(path)`: it may return or raise a `RagtuneError`, nothing else."""
    try:
        loader(path)
    except RagtuneError as error:
        assert str(error)
        assert "\n" not in error.message or "front matter" in error.message


def in_file(name: str, content: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / name
    path.write_bytes(content)
    return path


@FUZZ
@given(
    st.lists(
        json_values
        | st.dictionaries(st.sampled_from(["text", "id", "title", "timestamp", "x"]), json_values),
        min_size=1,
        max_size=5,
    )
)
def test_jsonl_corpora(records: list[Any]) -> None:
    lines = [json.dumps(r, ensure_ascii=True) for r in records]
    loaded(in_file("r.jsonl", "\n".join(lines).encode()), load_corpus)


@FUZZ
@given(st.binary(max_size=300))
def test_jsonl_corpora_of_any_bytes(content: bytes) -> None:
    loaded(in_file("r.jsonl", content), load_corpus)


def _mutated_locomo(draw: Any) -> list[Any]:
    records: list[Any] = [minimal_locomo_record("conv-a"), minimal_locomo_record("conv-b")]
    for _ in range(draw(st.integers(0, 4))):
        record = records[draw(st.integers(0, 1))]
        target: Any = record
        keys = draw(
            st.lists(
                st.sampled_from(
                    [
                        "conversation",
                        "session_1",
                        "session_2",
                        0,
                        1,
                        "speaker_a",
                        "speaker_b",
                        "session_1_date_time",
                        "text",
                        "speaker",
                        "dia_id",
                        "sample_id",
                    ]
                ),
                max_size=3,
            )
        )
        for key in keys:
            try:
                nxt = target[key]
            except (KeyError, IndexError, TypeError):
                break
            if not isinstance(nxt, dict | list):
                break
            target = nxt
        if isinstance(target, dict) and target:
            key = draw(st.sampled_from(sorted(target, key=str)))
            target[key] = draw(json_values)
        elif isinstance(target, list) and target:
            target[draw(st.integers(0, len(target) - 1))] = draw(json_values)
    return records


@FUZZ
@given(st.data())
def test_locomo_files(data: Any) -> None:
    records = _mutated_locomo(data.draw)
    loaded(in_file("c.json", json.dumps(records).encode()), load_corpus)


@FUZZ
@given(st.text(max_size=200), st.text(max_size=60))
def test_markdown_front_matter(front: str, body: str) -> None:
    content = f"---\n{front}\n---\n{body}"
    try:
        encoded = content.encode("utf-8")
    except UnicodeEncodeError:
        return  # not a file anyone can write
    folder = in_file("note.md", encoded).parent
    loaded(folder, load_corpus)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["model", "chunking", "train", "synth", "index", "corpus", "teacher", "x"]),
        json_values
        | st.dictionaries(
            st.sampled_from(
                [
                    "size",
                    "overlap",
                    "epochs",
                    "max_steps",
                    "strategies",
                    "seed",
                    "lr",
                    "extractor",
                    "path",
                ]
            ),
            json_values,
            max_size=3,
        ),
        max_size=4,
    )
)
def test_memory_yaml(settings_: dict[str, Any]) -> None:
    import yaml

    try:
        text = yaml.safe_dump(settings_, allow_unicode=True).encode("utf-8")
    except (UnicodeEncodeError, yaml.YAMLError):
        return
    loaded(in_file("memory.yaml", text), load_config)


@FUZZ
@given(st.binary(max_size=200))
def test_memory_yaml_of_any_bytes(content: bytes) -> None:
    loaded(in_file("memory.yaml", content), load_config)


@FUZZ
@given(
    st.lists(
        json_values | st.fixed_dictionaries({"prompt": json_values, "completion": json_values}),
        min_size=1,
        max_size=4,
    )
)
def test_training_data(records: list[Any]) -> None:
    lines = "\n".join(json.dumps(r) for r in records).encode()
    loaded(in_file("train.jsonl", lines), check_training_data)


@FUZZ
@given(
    st.lists(
        json_values
        | st.dictionaries(
            st.sampled_from(["question", "answer", "category", "evidence", "conversation"]),
            json_values,
        ),
        min_size=1,
        max_size=4,
    ),
    st.sampled_from([".jsonl", ".json"]),
)
@example(records=[{"category": [], "question": "0"}], suffix=".jsonl")  # found in CI
def test_question_files(records: list[Any], suffix: str) -> None:
    if suffix == ".jsonl":
        content = "\n".join(json.dumps(r) for r in records).encode()
    else:
        content = json.dumps(records).encode()
    loaded(in_file(f"questions{suffix}", content), load_questions)


@pytest.mark.parametrize("name", ["r.jsonl", "c.json", "memory.yaml", "q.jsonl"])
def test_the_fuzzed_loaders_accept_good_files(name: str) -> None:
    """The harness's control: good input loads (so the fuzzing above reaches the parsers)."""
    good = {
        "r.jsonl": (b'{"text": "Hello"}\n', load_corpus),
        "c.json": (json.dumps([minimal_locomo_record()]).encode(), load_corpus),
        "memory.yaml": (b"chunking:\n  size: 300\n", load_config),
        "q.jsonl": (b'{"question": "Who?", "answer": "Ann"}\n', load_questions),
    }
    content, loader = good[name]
    assert loader(in_file(name, content))
