"""The synthesis stage end to end (`ragtune.synth.pipeline.synthesize`) on a LoCoMo slice
(conv-26, sessions 1-4, heuristic index): its determinism, the file format, the dataset card,
synthesis with a teacher, its settings and its errors. The grounding filter, deduplication and
the train/validation split are tested in `test_synth_filters.py`.

The default synthesis runs once per module (`synthesized`, from conftest.py), so most tests read
its files; tests of other settings synthesize a private copy of the slice (`synth_workspace`,
about 2 s).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from ragtune.config import load_config
from ragtune.corpus.tables import read_text_units
from ragtune.errors import ConfigError, RagtuneError
from ragtune.llm.cache import CachedChatBackend
from ragtune.prompts import MEMORY_SYSTEM_PROMPT
from ragtune.synth import KINDS, STRATEGY_NAMES, DatasetCard
from ragtune.synth.pipeline import read_records, synthesize
from ragtune.synth.prompts import SYSTEM
from ragtune.workspace import Workspace
from support import FunctionChatBackend, is_repair
from synth_support import all_records, config_of, files_of, lines_of, record, teacher_answer

FIELDS = {"prompt", "completion", "kind", "query_scope", "source_ids", "fact_id", "evidence"}
DIA_ID = re.compile(r"^D\d+:\d+$")
NOT_JSON = "Sure! Here is what I think about it, in prose rather than JSON."


# --- determinism --------------------------------------------------------------------------------


def test_same_index_and_settings_give_the_same_files(
    synthesized: tuple[Workspace, DatasetCard], synth_workspace: Workspace
) -> None:
    first, first_card = synthesized

    card = synthesize(synth_workspace, config_of(synth_workspace), progress=False)

    assert files_of(synth_workspace) == files_of(first)
    assert card.kinds == first_card.kinds
    assert card.dropped == first_card.dropped
    assert card.tokens == first_card.tokens


def test_another_seed_changes_the_data(
    synthesized: tuple[Workspace, DatasetCard], synth_workspace: Workspace
) -> None:
    first, _ = synthesized

    card = synthesize(synth_workspace, config_of(synth_workspace, "synth.seed=7"), progress=False)

    assert card.split["seed"] == 7
    assert files_of(synth_workspace) != files_of(first)
    # The seed picks among the same candidates: the kinds written stay the same.
    assert set(card.kinds) == set(json.loads(first.card_path.read_text())["kinds"])


# --- format -------------------------------------------------------------------------------------


def test_every_line_is_a_conversational_prompt_completion_record(
    synthesized: tuple[Workspace, DatasetCard],
) -> None:
    workspace, card = synthesized
    unit_ids = {u.id for u in read_text_units(workspace.text_units_path)}
    train, val = lines_of(workspace.train_path), lines_of(workspace.val_path)

    assert (len(train), len(val)) == (card.train, card.val)
    for line in train + val:
        assert set(line) == FIELDS
        system, prompt = line["prompt"]
        assert system == {"role": "system", "content": MEMORY_SYSTEM_PROMPT}
        [completion] = line["completion"]
        assert set(prompt) == {"role", "content"} and prompt["role"] == "user"
        assert set(completion) == {"role", "content"} and completion["role"] == "assistant"
        assert isinstance(prompt["content"], str) and prompt["content"].strip()
        assert isinstance(completion["content"], str) and completion["content"].strip()
        assert line["kind"] in KINDS
        assert line["query_scope"] in {"local", "global"}
        assert (line["query_scope"] == "global") == (line["kind"] == "global")
        assert isinstance(line["source_ids"], list)
        assert set(line["source_ids"]) <= unit_ids
        assert bool(line["source_ids"]) == (line["kind"] != "unanswerable")
        assert re.fullmatch(r"fact-[0-9a-f]+", line["fact_id"])
        assert isinstance(line["evidence"], list)
        assert all(DIA_ID.match(e) for e in line["evidence"])


def test_train_file_loads_with_datasets(
    synthesized: tuple[Workspace, DatasetCard], tmp_path: Path
) -> None:
    from datasets import load_dataset

    workspace, card = synthesized

    loaded = load_dataset(
        "json",
        data_files={"train": str(workspace.train_path), "validation": str(workspace.val_path)},
        cache_dir=str(tmp_path / "hf-datasets"),
    )

    train = loaded["train"]
    assert train.num_rows == card.train
    assert loaded["validation"].num_rows == card.val
    assert {"prompt", "completion", "kind", "query_scope", "source_ids"} <= set(train.column_names)
    first = lines_of(workspace.train_path)[0]
    assert train[0]["prompt"] == first["prompt"]
    assert train[0]["completion"] == first["completion"]
    assert train[0]["source_ids"] == first["source_ids"]


def test_read_records_round_trips(synthesized: tuple[Workspace, DatasetCard]) -> None:
    workspace, _ = synthesized

    for path in (workspace.train_path, workspace.val_path):
        records = read_records(path)
        assert [r.to_json() for r in records] == lines_of(path)
        assert all(isinstance(r.source_ids, tuple) for r in records)


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path) -> None:
    good = json.dumps(record("Who is Caroline?", "A friend.").to_json())
    not_json = tmp_path / "not-json.jsonl"
    not_json.write_text(f"{good}\n\n{{not json\n", encoding="utf-8")
    not_a_record = tmp_path / "not-a-record.jsonl"
    not_a_record.write_text(f"{good}\n{good}\n" + '{"prompt": []}\n', encoding="utf-8")

    with pytest.raises(RagtuneError) as raised:
        read_records(not_json)
    assert str(not_json) in str(raised.value)
    assert "line 3" in str(raised.value)
    assert "invalid JSON" in str(raised.value)

    with pytest.raises(RagtuneError) as raised:
        read_records(not_a_record)
    assert str(not_a_record) in str(raised.value)
    assert "line 3" in str(raised.value)
    assert "not a training record" in str(raised.value)


# --- the dataset card ---------------------------------------------------------------------------


def test_card_counts_add_up(synthesized: tuple[Workspace, DatasetCard]) -> None:
    workspace, card = synthesized
    saved = json.loads(workspace.card_path.read_text(encoding="utf-8"))
    records = all_records(workspace)

    assert saved == json.loads(json.dumps(card.to_json()))
    assert saved["records"] == card.train + card.val == len(records)
    for table in (card.kinds, card.scopes):
        assert sum(sides["train"] for sides in table.values()) == card.train
        assert sum(sides["val"] for sides in table.values()) == card.val
    assert card.kinds == {
        kind: {
            "train": sum(r.kind == kind for r in read_records(workspace.train_path)),
            "val": sum(r.kind == kind for r in read_records(workspace.val_path)),
        }
        for kind in {r.kind for r in records}
    }
    assert set(card.scopes) == {"local", "global"}
    assert card.facts == len({r.fact_id for r in records})
    assert card.writer == "heuristic"
    assert card.teacher == {}
    summary = card.summary_line()
    assert summary.startswith(f"synthesized {card.records} records ({card.train} train, ")
    assert "with the heuristic writer" in summary
    assert "teacher calls 0" in summary


def test_card_counts_tokens_with_the_models_tokenizer(
    synthesized: tuple[Workspace, DatasetCard],
) -> None:
    from ragtune.llm.tokenizer import load_tokenizer

    workspace, card = synthesized
    records = all_records(workspace)
    tokenizer = load_tokenizer(config_of(workspace).model)

    assert str(card.tokens["counted_in"]) == "tokens"
    assert card.tokens["total"] == card.tokens["prompt"] + card.tokens["completion"] > 0
    assert card.tokens["prompt"] == sum(tokenizer.count_tokens([r.question for r in records]))
    assert card.tokens["completion"] == sum(tokenizer.count_tokens([r.answer for r in records]))


def test_card_says_what_was_skipped_and_which_units_are_used(
    synthesized: tuple[Workspace, DatasetCard],
) -> None:
    workspace, card = synthesized
    units = read_text_units(workspace.text_units_path)
    train = read_records(workspace.train_path)

    assert set(card.skipped) == {"cot"}
    assert "synth.writer=llm" in card.skipped["cot"]
    assert list(card.strategies) == [name for name in STRATEGY_NAMES if name != "cot"]
    assert all(entry["candidates"] >= 0 for entry in card.strategies.values())
    assert card.units["total"] == len(units) > 0
    assert card.units["sources_of_training_records"] == len(
        {u for r in train for u in r.source_ids}
    )
    assert 0 < card.units["sources_of_training_records"] <= len(units)


def test_tokens_are_counted_in_words_without_the_tokenizer(
    synth_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_of(
        synth_workspace, "synth.strategies=temporal", "model=hf:/nonexistent/ragtune-test-model"
    )

    with caplog.at_level(logging.WARNING, logger="ragtune"):
        card = synthesize(synth_workspace, config, progress=False)

    records = all_records(synth_workspace)
    assert records
    assert str(card.tokens["counted_in"]) == "words"
    assert card.tokens["prompt"] == sum(len(r.question.split()) for r in records)
    assert card.tokens["completion"] == sum(len(r.answer.split()) for r in records)
    assert any("counting words instead of tokens" in m for m in caplog.messages)


# --- a teacher ----------------------------------------------------------------------------------


def test_teacher_writes_records_and_its_calls_are_counted(synth_workspace: Workspace) -> None:
    teacher = FunctionChatBackend(teacher_answer)
    config = config_of(synth_workspace, "synth.writer=llm")

    card = synthesize(synth_workspace, config, teacher=teacher, progress=False)

    assert card.writer == "llm"
    assert card.skipped == {}
    assert card.teacher["model"] == "function"
    assert card.teacher["calls"] == len(teacher.received) > 0
    assert card.teacher["cache_hits"] == 0
    assert card.teacher["prompt_tokens"] == teacher.stats.usage.prompt_tokens > 0
    assert card.teacher["completion_tokens"] == teacher.stats.usage.completion_tokens > 0
    assert f"teacher calls {card.teacher['calls']}" in card.summary_line()
    assert all(request.messages[0]["content"] == SYSTEM for request in teacher.received)
    assert {"entity_cot", "relationship_cot", "text_unit", "global"} <= set(card.kinds)
    records = all_records(synth_workspace)
    written = [r for r in records if r.kind == "text_unit"]
    assert written and all(r.question.startswith(("What was said", "Which words")) for r in written)
    assert "malformed teacher output" not in card.dropped


def test_malformed_teacher_output_is_counted_and_the_run_goes_on(
    synth_workspace: Workspace,
) -> None:
    teacher = FunctionChatBackend(lambda request: NOT_JSON)
    units = read_text_units(synth_workspace.text_units_path)
    config = config_of(synth_workspace, "synth.writer=llm")

    card = synthesize(synth_workspace, config, teacher=teacher, progress=False)

    malformed = card.dropped["malformed teacher output"]
    assert malformed["text_unit"] == len(units)  # one request per unit, none usable
    assert malformed["entity_cot"] > 0 and malformed["relationship_cot"] > 0
    assert malformed["global"] > 0
    assert not {"text_unit", "entity_cot", "relationship_cot"} & set(card.kinds)
    # Strategies that need no teacher still write their records.
    assert {"entity_template", "relationship_template", "unanswerable", "recall"} <= set(card.kinds)
    assert card.records == len(all_records(synth_workspace)) > 0
    # Every failed request was sent back for repair twice, and every call is counted.
    first_turns = [r for r in teacher.received if not is_repair(r)]
    assert card.teacher["calls"] == len(teacher.received) == 3 * len(first_turns)


def test_teacher_calls_go_through_the_cache(synth_workspace: Workspace) -> None:
    config = config_of(synth_workspace, "synth.writer=llm", "synth.strategies=text_units,temporal")
    model = FunctionChatBackend(teacher_answer)
    cached = CachedChatBackend(model, synth_workspace.llm_cache_path)
    try:
        first = synthesize(synth_workspace, config, teacher=cached, progress=False)
    finally:
        cached.close()
    first_files = files_of(synth_workspace)
    asked = cached.hits + cached.misses

    again = FunctionChatBackend(teacher_answer)
    cached_again = CachedChatBackend(again, synth_workspace.llm_cache_path)
    try:
        second = synthesize(synth_workspace, config, teacher=cached_again, progress=False)
    finally:
        cached_again.close()

    assert first.teacher["calls"] == len(model.received) > 0
    assert first.teacher["cache_hits"] == cached.hits
    assert again.received == []
    assert second.teacher["calls"] == 0
    assert second.teacher["cache_hits"] == asked > 0
    assert files_of(synth_workspace) == first_files
    assert second.kinds == first.kinds


# --- settings -----------------------------------------------------------------------------------


def test_unknown_strategy_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, ["synth.strategies=text_units,bogus"])

    message = str(raised.value)
    assert "bogus" in message
    assert all(name in message for name in STRATEGY_NAMES)


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ("synth.val_fraction=1", "val_fraction"),
        ("synth.val_fraction=-0.1", "val_fraction"),
        ("synth.min_support=1.5", "min_support"),
        ("synth.min_support=-0.2", "min_support"),
        ("synth.dedup_threshold=2", "dedup_threshold"),
    ],
)
def test_out_of_range_synth_settings_are_config_errors(override: str, setting: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_config(None, [override])


def test_in_range_edges_are_accepted() -> None:
    config = load_config(None, ["synth.val_fraction=0", "synth.min_support=1"])

    assert config.synth.val_fraction == 0.0
    assert config.synth.min_support == 1.0


def test_synthesize_validates_the_config_before_writing(synth_workspace: Workspace) -> None:
    config = config_of(synth_workspace)
    config.synth.strategies = ["text_units", "nope"]

    with pytest.raises(ConfigError, match="nope"):
        synthesize(synth_workspace, config, progress=False)

    assert not synth_workspace.synth_dir.exists()


def test_strategies_override_runs_only_those(synth_workspace: Workspace) -> None:
    config = config_of(synth_workspace, "synth.strategies=temporal,text_units")

    card = synthesize(synth_workspace, config, progress=False)

    assert list(card.strategies) == ["text_units", "temporal"]  # the built-in order
    assert card.skipped == {}
    assert set(card.kinds) == {"text_unit", "temporal"}
    assert {r.kind for r in all_records(synth_workspace)} == {"text_unit", "temporal"}


def test_recall_alone_recalls_every_unit(synth_workspace: Workspace) -> None:
    """With no earlier questions, each unit gets a question about its conversation, "so every
    unit can be recalled" (strategies/recall.py)."""
    units = read_text_units(synth_workspace.text_units_path)

    card = synthesize(
        synth_workspace, config_of(synth_workspace, "synth.strategies=recall"), progress=False
    )

    recalled = {r.source_ids[0] for r in all_records(synth_workspace)}
    assert recalled == {u.id for u in units}, card.dropped
    assert card.units["sources_of_training_records"] == len(units)


# --- errors -------------------------------------------------------------------------------------


def test_workspace_without_an_index_is_an_error(synth_workspace: Workspace) -> None:
    synth_workspace.entities_path.unlink()

    with pytest.raises(RagtuneError) as raised:
        synthesize(synth_workspace, config_of(synth_workspace), progress=False)

    assert "run `ragtune index` first" in str(raised.value)
    assert str(synth_workspace.root) in str(raised.value)
    assert not synth_workspace.synth_dir.exists()
