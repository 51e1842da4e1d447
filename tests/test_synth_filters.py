"""The filters of the synthesis stage and its train/validation split: the grounding filter
(`ragtune.synth.grounding`), question deduplication (`ragtune.synth.dedup`) and the split
(`ragtune.synth.split`), each on its own and in `synthesize` on a LoCoMo slice (conv-26,
sessions 1-4, heuristic index).

Tests in the pipeline read the default synthesis (`synthesized`, once per module, from
conftest.py) or the source split (`source_split`), or synthesize a private copy of the slice
(`synth_workspace`, about 2 s).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

import pytest

from ragtune.prompts import recall_question
from ragtune.synth import DatasetCard
from ragtune.synth.context import SynthContext
from ragtune.synth.dedup import Deduplicator, deduplicate, jaccard, normalize_question, shingles
from ragtune.synth.grounding import GroundingFilter, content_stems, support
from ragtune.synth.pipeline import read_records, synthesize
from ragtune.synth.records import QARecord
from ragtune.synth.split import held_out, split_records
from ragtune.workspace import Workspace
from synth_support import (
    ScriptedStrategy,
    all_records,
    config_of,
    lines_of,
    longest_line,
    record,
    synthesized_copy,
)

UNIT_TEXT = "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."


# --- the slice synthesized with a source split, once per module ---------------------------------


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
    # profiles ask a few questions on purpose; what they restate is what must differ
    profiles = [r.answer for r in records if r.kind == "profile"]
    others = [r.question for r in records if r.kind not in ("recall", "profile")]

    assert recalled and others and profiles
    for questions in (recalled, profiles, others):
        normalized = [normalize_question(q) for q in questions]
        assert len(set(normalized)) == len(normalized)


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
