"""The synthesis stage end to end (`ragtune.synth.pipeline.synthesize`) on a LoCoMo slice
(conv-26, sessions 1-4, heuristic index), and its parts: the grounding filter, question
deduplication, the train/validation split, the file format and the dataset card.

The default synthesis runs once per module (`synthesized`), so most tests read its files; tests
of other settings synthesize a private copy of the slice (`synth_workspace`, about 2 s).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from ragtune.config import MemoryConfig, load_config
from ragtune.corpus.tables import read_text_units
from ragtune.errors import ConfigError, RagtuneError
from ragtune.llm import ChatRequest
from ragtune.llm.cache import CachedChatBackend
from ragtune.synth import KINDS, STRATEGY_NAMES, DatasetCard
from ragtune.synth.context import SynthContext
from ragtune.synth.dedup import Deduplicator, deduplicate, jaccard, normalize_question, shingles
from ragtune.synth.grounding import GroundingFilter, content_stems, support
from ragtune.synth.pipeline import read_records, synthesize
from ragtune.synth.prompts import SYSTEM
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.split import held_out, split_records
from ragtune.synth.strategies import Generated, Strategy, recall_question
from ragtune.workspace import Workspace
from support import FunctionChatBackend, is_repair

FIELDS = {"prompt", "completion", "kind", "query_scope", "source_ids", "fact_id", "evidence"}
DIA_ID = re.compile(r"^D\d+:\d+$")
NOT_JSON = "Sure! Here is what I think about it, in prose rather than JSON."
UNIT_TEXT = "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."


# --- helpers ------------------------------------------------------------------------------------


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_records(workspace: Workspace) -> list[QARecord]:
    return read_records(workspace.train_path) + read_records(workspace.val_path)


def files_of(workspace: Workspace) -> tuple[bytes, bytes]:
    return workspace.train_path.read_bytes(), workspace.val_path.read_bytes()


def config_of(workspace: Workspace, *overrides: str) -> MemoryConfig:
    return load_config(workspace.config_path, list(overrides))


def record(
    question: str,
    answer: str,
    sources: Sequence[str] = ("u1",),
    *,
    kind: str = "text_unit",
    fact: str | None = None,
    support_text: str | None = None,
) -> QARecord:
    return QARecord(
        question=question,
        answer=answer,
        kind=kind,
        query_scope="local",
        source_ids=tuple(sources),
        fact_id=fact or fact_id(kind, question),
        support=support_text,
    )


@dataclass
class NoSettings:
    """A custom strategy's (empty) settings section."""


class ScriptedStrategy(Strategy):
    """A custom strategy whose records a test writes, from the context."""

    name: ClassVar[str] = "scripted"
    kinds: ClassVar[tuple[str, ...]] = ("scripted",)
    settings_class = NoSettings

    def __init__(self, make: Callable[[SynthContext], list[QARecord]]) -> None:
        super().__init__()
        self.make = make

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        return Generated(records=self.make(context))


def longest_line(context: SynthContext) -> tuple[str, str]:
    """The first unit's id and its longest line (a span of it)."""
    unit = context.units[0]
    return unit.id, max(unit.text.splitlines(), key=len)


def user_message(request: ChatRequest) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "user")


def labelled(text: str, label: str) -> str:
    found = re.search(rf"^{label}: (.*)$", text, re.MULTILINE)
    return found.group(1) if found else ""


def teacher_answer(request: ChatRequest) -> str:
    """What a well-behaved teacher answers to each synthesis prompt, grounded in the prompt."""
    text = user_message(request)
    if text.startswith("Here is an entity"):
        name = labelled(text, "Entity")
        answer = labelled(text, "Description")[:300]
        return json.dumps(
            {
                "question": f"What do the memories say about {name}?",
                "reasoning": "",
                "answer": answer,
            }
        )
    if text.startswith("Here is a relationship"):
        source, target = labelled(text, "Between").split(" and ", 1)
        answer = labelled(text, "Description")[:300]
        question = f"How are {source} and {target} related?"
        return json.dumps({"question": question, "reasoning": "", "answer": answer})
    if text.startswith("Here is a passage"):
        passage = text.split('"""\n', 1)[1].split('\n"""', 1)[0]
        first = passage.splitlines()[0]
        item = {
            "question": f"What was said first in the passage beginning {first[:60]!r}?",
            "paraphrases": [f"Which words open the passage {first[:60]!r}?"],
            "answer": first,
            "quote": first,
        }
        return json.dumps({"questions": [item]})
    if text.startswith("In a conversation on"):
        found = re.search(r'said: "(.*)"\n', text)
        assert found, text
        return json.dumps(
            {"question": f"When did this happen: {found.group(1)}", "paraphrases": []}
        )
    if text.startswith("Question: ") and "Here is a report" in text:
        report = text.split("Here is a report about part of the memories:\n", 1)[1]
        return json.dumps({"points": [{"description": report[:200], "score": 50}]})
    if text.startswith("Question: "):
        points = [line[2:] for line in text.splitlines() if line.startswith("- ")]
        return json.dumps({"answer": " ".join(points)})
    raise AssertionError(f"unexpected synthesis request: {text[:200]}")


# --- the default synthesis, once per module -----------------------------------------------------


def synthesized_copy(
    indexed_slice: Path, folder: Path, *overrides: str
) -> tuple[Workspace, DatasetCard]:
    """A copy of the slice in `folder`, synthesized with its memory.yaml and `overrides`."""
    root = folder / "memory"
    shutil.copytree(indexed_slice, root)
    workspace = Workspace.at(root)
    card = synthesize(workspace, config_of(workspace, *overrides), progress=False)
    return workspace, card


@pytest.fixture(scope="module")
def synthesized(
    indexed_slice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, DatasetCard]:
    """The slice synthesized with its memory.yaml (heuristic writer, paraphrase split)."""
    return synthesized_copy(indexed_slice, tmp_path_factory.mktemp("synthesized"))


@pytest.fixture(scope="module")
def source_split(
    indexed_slice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, DatasetCard]:
    """The slice synthesized with `synth.split=source`."""
    folder = tmp_path_factory.mktemp("source-split")
    return synthesized_copy(indexed_slice, folder, "synth.split=source")


# --- grounding ----------------------------------------------------------------------------------


def test_support_is_the_share_of_answer_words_in_the_source() -> None:
    assert support("a LGBTQ support group", UNIT_TEXT) == 1.0
    assert support("Support groups.", UNIT_TEXT) == 1.0  # stemmed, case-folded
    assert support("Melanie bought a purple bicycle in Paris", UNIT_TEXT) == 0.0
    assert support("support group in Paris, Berlin", UNIT_TEXT) == 0.5
    assert support("the and of", UNIT_TEXT) == 1.0  # no content words: nothing to contradict
    stems = content_stems("Caroline's groups in 2023")  # possessive, plural, stop word, number
    assert stems == content_stems("caroline group 2023") and len(stems) == 3


def test_grounding_filter_keeps_spans_and_rejects_invented_answers() -> None:
    grounding = GroundingFilter({"u1": UNIT_TEXT, "u2": "Melanie: I painted a lake."}, 0.6)
    grounded = record("Where did Caroline go?", "A LGBTQ support group.")
    invented = record("Where did Caroline go?", "Zebras juggled turquoise pineapples on Neptune.")
    elsewhere = record("What did Melanie paint?", "A lake.", sources=("u1",))

    assert grounding.keeps(grounded)
    assert grounding.score(grounded) == 1.0
    assert not grounding.keeps(invented)
    assert grounding.score(invented) == 0.0
    assert not grounding.keeps(elsewhere)  # grounded in another unit, not in its own source
    assert grounding.keeps(record("What did Melanie paint?", "A lake.", sources=("u1", "u2")))
    unknown = record("Who?", "A LGBTQ support group.", sources=("no-such-unit",))
    assert not grounding.keeps(unknown)


def test_abstentions_are_not_checked_but_support_text_is() -> None:
    grounding = GroundingFilter({"u1": UNIT_TEXT}, 0.6)
    abstention = record("What did Caroline eat?", "Zebras? I have no information.", sources=())
    described = record(
        "Who is Zorblax?",
        "Zorblax is a purple giraffe.",
        sources=("u1",),
        support_text="Zorblax: a purple giraffe from the index description.",
    )
    unsupported = record("Who is Zorblax?", "Zorblax is a purple giraffe.", sources=())

    assert grounding.score(abstention) is None
    assert grounding.keeps(abstention)
    assert grounding.keeps(described)
    assert grounding.score(described) == 1.0
    assert grounding.score(unsupported) is None  # no sources and no support: an abstention


@pytest.mark.parametrize(("min_support", "kept"), [(0.4, True), (0.5, True), (0.6, False)])
def test_min_support_is_the_threshold(min_support: float, kept: bool) -> None:
    half = record("Where?", "support group in Paris, Berlin")  # support 0.5

    assert GroundingFilter({"u1": UNIT_TEXT}, min_support).keeps(half) is kept


def test_pipeline_drops_ungrounded_answers_of_a_custom_strategy(
    synth_workspace: Workspace,
) -> None:
    def make(context: SynthContext) -> list[QARecord]:
        unit_id, line = longest_line(context)
        return [
            record("What did they say first?", line, (unit_id,), kind="scripted"),
            record(
                "What did Zorblax juggle?",
                "Zorblax juggled turquoise pineapples on Neptune.",
                (unit_id,),
                kind="scripted",
            ),
            record("What did Zorblax eat?", "I don't know about Zorblax.", (), kind="scripted"),
        ]

    card = synthesize(
        synth_workspace,
        config_of(synth_workspace),
        strategies=[ScriptedStrategy(make)],
        progress=False,
    )

    written = all_records(synth_workspace)
    assert [r.question for r in written] == ["What did they say first?", "What did Zorblax eat?"]
    assert card.dropped["ungrounded"] == {"scripted": 1}
    assert card.strategies["scripted"]["candidates"] == 3
    assert card.kinds == {"scripted": {"train": 2, "val": 0}}


# --- deduplication ------------------------------------------------------------------------------


def test_exact_duplicates_after_normalization_are_dropped() -> None:
    seen = Deduplicator(0.85)

    assert normalize_question("  What did Caroline, research?!") == "what did caroline research"
    assert seen.add("What did Caroline research?")
    assert not seen.add("what did caroline research")
    assert not seen.add("WHAT did Caroline — research ?!")
    assert seen.add("Where did Melanie go camping?")


def test_near_duplicates_above_the_threshold_are_dropped() -> None:
    first = "What did Caroline say about the adoption agencies she has been researching on 8 May?"
    near = first.replace("researching", "researching lately")
    other = "When did Melanie paint the lake at sunrise?"
    similarity = jaccard(shingles(first), shingles(near))
    assert 0.85 <= similarity < 0.9

    strict = Deduplicator(0.85)
    assert strict.add(first)
    assert not strict.add(near)
    assert strict.add(other)
    lenient = Deduplicator(0.9)
    assert lenient.add(first)
    assert lenient.add(near)


def test_deduplicate_is_deterministic_and_keeps_the_first() -> None:
    questions = [
        "Who is Caroline?",
        "Who is Melanie?",
        "who is caroline",
        "What did Caroline say about the adoption agencies she has been researching?",
        "What did Caroline say about the adoption agencies she has been researching lately?",
        "Where did Melanie go camping last week?",
    ]
    records = [record(q, "Caroline.") for q in questions]

    kept, dropped = deduplicate(records, 0.85)
    again = deduplicate(list(records), 0.85)

    assert [r.question for r in kept] == [questions[0], questions[1], questions[3], questions[5]]
    assert [r.question for r in dropped] == [questions[2], questions[4]]
    assert again == (kept, dropped)


def test_namespaces_are_compared_apart() -> None:
    seen = Deduplicator(0.85)

    assert seen.add("Who is Caroline?")
    assert seen.add("Who is Caroline?", "recall")
    assert not seen.add("who is caroline", "recall")


def test_pipeline_counts_duplicates_and_compares_recall_by_the_wrapped_question(
    synth_workspace: Workspace,
) -> None:
    near_a = "What did Caroline say about the adoption agencies she has been researching on 8 May?"
    near_b = near_a.replace("researching", "researching lately")
    # Whole, the two recall questions are near duplicates (shared instruction); wrapped, not.
    whole = [shingles(recall_question(name)) for name in ("Who is Caroline?", "Who is Melanie?")]
    assert jaccard(*whole) >= 0.85
    asked = [
        ("Who is Caroline?", "scripted"),
        ("WHO is caroline!!", "scripted"),
        ("Who is Melanie?", "scripted"),
        (near_a, "scripted"),
        (near_b, "scripted"),
        (recall_question("Who is Caroline?"), "recall"),
        (recall_question("Who is Melanie?"), "recall"),
        (recall_question("who is melanie"), "recall"),
    ]

    def make(context: SynthContext) -> list[QARecord]:
        unit_id, line = longest_line(context)
        return [
            record(question, line, (unit_id,), kind=kind, fact=f"fact-{n}")
            for n, (question, kind) in enumerate(asked)
        ]

    card = synthesize(
        synth_workspace,
        config_of(synth_workspace),
        strategies=[ScriptedStrategy(make)],
        progress=False,
    )

    assert card.dropped["duplicate question"] == {"recall": 1, "scripted": 2}
    kept = [asked[n][0] for n in (0, 2, 3, 5, 6)]
    assert [r.question for r in all_records(synth_workspace)] == kept


def test_synthesized_questions_are_distinct(synthesized: tuple[Workspace, DatasetCard]) -> None:
    workspace, _ = synthesized
    records = all_records(workspace)
    prefix = recall_question("")
    recalled = [r.question[len(prefix) :] for r in records if r.kind == "recall"]
    others = [r.question for r in records if r.kind != "recall"]

    assert recalled and others
    for questions in (recalled, others):
        normalized = [normalize_question(q) for q in questions]
        assert len(set(normalized)) == len(normalized)


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


# --- split --------------------------------------------------------------------------------------


def test_split_records_paraphrase_holds_out_one_phrasing_of_facts() -> None:
    records = [
        record(f"Question {n} {m}?", "Caroline.", fact=f"fact-{n}")
        for n in range(60)
        for m in (1, 2)
    ] + [record(f"Single {n}?", "Caroline.", fact=f"single-{n}") for n in range(20)]

    split = split_records(records, mode="paraphrase", val_fraction=0.3, seed=0)

    assert split.val
    assert split_records(records, mode="paraphrase", val_fraction=0.3, seed=0) == split
    assert len(split.train) + len(split.val) == len(records)
    assert not split.straddling
    val_facts = Counter(r.fact_id for r in split.val)
    assert set(val_facts.values()) == {1}  # one phrasing per held-out fact
    assert not any(fact.startswith("single-") for fact in val_facts)  # never a fact's only one
    assert val_facts.keys() <= {r.fact_id for r in split.train}
    assert {fact for fact in val_facts} == {
        f"fact-{n}" for n in range(60) if held_out(f"fact-{n}", 0.3, 0)
    }
    assert [r for r in records if r in split.train] == split.train  # input order kept
    other = split_records(records, mode="paraphrase", val_fraction=0.3, seed=1)
    assert other.val != split.val


def test_split_records_source_keeps_units_on_one_side() -> None:
    units = [f"u{n}" for n in range(40)]
    held = [u for u in units if held_out(u, 0.3, 0)]
    kept = [u for u in units if not held_out(u, 0.3, 0)]
    assert held and kept
    records = [
        record("In validation?", "Caroline.", (held[0],)),
        record("In training?", "Caroline.", (kept[0], kept[1])),
        record("Both sides?", "Caroline.", (held[0], kept[0])),
        record("Nowhere?", "I don't know.", ()),
    ]

    split = split_records(records, mode="source", val_fraction=0.3, seed=0)

    assert [r.question for r in split.val + split.train if r.source_ids] == [
        "In validation?",
        "In training?",
    ]
    assert [r.question for r in split.straddling] == ["Both sides?"]
    assert "Nowhere?" in [r.question for r in split.train + split.val]


def test_val_fraction_zero_holds_out_nothing() -> None:
    records = [record(f"Question {n} {m}?", "A.", fact=f"f{n}") for n in range(30) for m in (1, 2)]

    modes: tuple[Literal["paraphrase", "source"], ...] = ("paraphrase", "source")
    for mode in modes:
        split = split_records(records, mode=mode, val_fraction=0.0, seed=0)
        assert split.val == [] and split.straddling == []
        assert split.train == records


def test_paraphrase_split_holds_out_unseen_phrasings_of_trained_facts(
    synthesized: tuple[Workspace, DatasetCard],
) -> None:
    workspace, card = synthesized
    train, val = read_records(workspace.train_path), read_records(workspace.val_path)

    assert val, "the slice should hold some facts out"
    assert card.split == {"mode": "paraphrase", "val_fraction": 0.1, "seed": 0}
    train_facts = {r.fact_id for r in train}
    assert all(r.fact_id in train_facts for r in val)
    assert not {r.question for r in val} & {r.question for r in train}
    assert set(Counter(r.fact_id for r in val).values()) == {1}
    assert "source units on both sides of the split" not in card.dropped


def test_source_split_never_shares_a_unit(
    synthesized: tuple[Workspace, DatasetCard], source_split: tuple[Workspace, DatasetCard]
) -> None:
    workspace, card = source_split
    _, paraphrase_card = synthesized
    train, val = read_records(workspace.train_path), read_records(workspace.val_path)

    assert card.split["mode"] == "source"
    assert val and train
    train_units = {u for r in train for u in r.source_ids}
    val_units = {u for r in val for u in r.source_ids}
    assert val_units and not train_units & val_units
    assert all(held_out(u, 0.1, 0) for u in val_units)
    assert not any(held_out(u, 0.1, 0) for u in train_units)
    straddling = sum(card.dropped["source units on both sides of the split"].values())
    assert straddling > 0
    # The split comes after filtering: the same records, less those straddling the split.
    assert card.records + straddling == paraphrase_card.records


def test_val_fraction_zero_writes_an_empty_val_file(
    synthesized: tuple[Workspace, DatasetCard], synth_workspace: Workspace
) -> None:
    _, first_card = synthesized

    card = synthesize(
        synth_workspace, config_of(synth_workspace, "synth.val_fraction=0"), progress=False
    )

    assert card.val == 0
    assert synth_workspace.val_path.read_text(encoding="utf-8") == ""
    assert card.train == first_card.records
    assert len(lines_of(synth_workspace.train_path)) == first_card.records


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
        [prompt] = line["prompt"]
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
    assert "not JSON" in str(raised.value)

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
