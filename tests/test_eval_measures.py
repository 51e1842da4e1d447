"""What `ragtune eval` measures beyond F1: the gold-evidence oracle, evidence recall of the
retrieving systems, exact match, abstention and answer length, each conversation and the pool of
several memories, and paired bootstrap intervals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ragtune.baselines import SystemAnswer
from ragtune.baselines.oracle import Evidence, GoldTurns, turn_keys
from ragtune.cli import cli
from ragtune.cli import evaluate as _register_eval  # noqa: F401  (adds eval to cli)
from ragtune.corpus.types import Document, TextUnit, Turn
from ragtune.errors import RagtuneError
from ragtune.eval.evaluation import parse_system_limits, pool_runs
from ragtune.eval.locomo_scoring import exact_match, same_month, score_answer
from ragtune.eval.paired import paired_difference, paired_differences
from ragtune.eval.questions import Question, load_questions
from ragtune.eval.runner import ScoredAnswer, SystemRun, evidence_found
from ragtune.testing import tiny_locomo_conversation
from support import write

# -- questions and evidence ------------------------------------------------------------------------


def test_locomo_questions_know_their_conversation_and_split_joined_evidence(
    tmp_path: Path,
) -> None:
    record = tiny_locomo_conversation("conv-a")
    record["qa"][0]["evidence"] = ["D1:1; D2:2"]  # as LoCoMo writes a few
    path = write(tmp_path / "q.json", json.dumps([record]))
    first = load_questions(path)[0]
    assert first.conversation == "conv-a"
    assert first.evidence == ("D1:1", "D2:2")
    jsonl = write(
        tmp_path / "q.jsonl",
        '{"question": "Q?", "answer": "A", "evidence": ["T7"], "conversation": "chat-1"}\n'
        '{"question": "Q2?", "answer": "B"}\n',
    )
    named, unnamed = load_questions(jsonl)
    assert (named.conversation, named.evidence) == ("chat-1", ("T7",))
    assert (unnamed.conversation, unnamed.evidence) == (None, ())


def session(conversation: str, number: int, when: str, turns: list[tuple[str, str]]) -> Document:
    lines = [f"{speaker}: {text}" for speaker, text in turns]
    spans, offset = [], 0
    for i, line in enumerate(lines, start=1):
        spans.append(Turn(f"D{number}:{i}", turns[i - 1][0], offset, offset + len(line)))
        offset += len(line) + 1
    return Document(
        id=f"doc-{conversation}-{number}",
        title=f"{conversation} {number}",
        text="\n".join(lines),
        source=f"x#{conversation}/session_{number}",
        timestamp=when,
        metadata={"sample_id": conversation},
        turns=tuple(spans),
    )


DOCUMENTS = [
    session("conv-b", 2, "2024-02-10T18:15:00", [("Ann", "Pixel broke a vase."), ("Bob", "No!")]),
    session("conv-b", 1, "2024-01-01T09:00:00", [("Ann", "I adopted Pixel."), ("Bob", "A cat!")]),
    session("conv-c", 1, "2023-05-01T10:00:00", [("Cy", "I sail on Sundays."), ("Di", "Nice.")]),
]


def test_the_oracle_finds_the_evidence_turns_of_the_right_conversation_in_time_order() -> None:
    gold = GoldTurns.from_documents(DOCUMENTS)
    assert len(gold) == 6
    found = gold.find(Evidence("conv-b", ("D2:1", "D1:1", "D9:9")))
    assert [unit.text for unit in found] == ["Ann: I adopted Pixel.", "Ann: Pixel broke a vase."]
    assert [unit.timestamp for unit in found] == ["2024-01-01T09:00:00", "2024-02-10T18:15:00"]
    assert [unit.id for unit in found] == ["conv-b:D1:1", "conv-b:D2:1"]
    (other,) = gold.find(Evidence("conv-c", ("D1:1",)))
    assert other.text == "Cy: I sail on Sundays."
    assert gold.find(Evidence("conv-b", ("D1:1", "D1:1"))) == found[:1]  # each turn once


def test_evidence_is_found_only_in_a_unit_of_the_questions_conversation() -> None:
    units = [
        TextUnit("u-b", "doc-conv-b-1", 0, "…", 5, 0, 10, turn_ids=("D1:1", "D1:2")),
        TextUnit("u-c", "doc-conv-c-1", 0, "…", 5, 0, 10, turn_ids=("D1:1",)),
    ]
    keys = turn_keys(units, DOCUMENTS)
    assert keys["u-b"] == {("conv-b", "D1:1"), ("conv-b", "D1:2")}

    def found(unit_ids: tuple[str, ...], conversation: str | None, evidence: tuple[str, ...]):  # type: ignore[no-untyped-def]
        answer = SystemAnswer("x", 1.0, 1, 1, unit_ids=unit_ids)
        question = Question("q", "Q?", "A", 4, evidence, conversation)
        return evidence_found(answer, question, keys)

    assert found(("u-b",), "conv-b", ("D1:2",)) is True
    assert found(("u-c",), "conv-b", ("D1:2", "D1:1")) is False  # same turn id, other chat
    assert found(("u-c",), None, ("D1:1",)) is True  # a conversation-less question: ids only
    assert found((), "conv-b", ("D1:1",)) is None  # no passages
    assert found(("u-b",), "conv-b", ()) is None  # evidence unknown


# -- per-answer measures ---------------------------------------------------------------------------


def test_exact_match_compares_normalized_answers_and_cuts_open_domain_gold() -> None:
    assert exact_match("The Porto.", "porto", 4)
    assert not exact_match("Porto, Portugal", "Porto", 4)
    assert exact_match("Liberal", "Liberal; because she supports LGBTQ rights", 3)
    assert not exact_match("", "a", 4)  # nothing left of either is no match


def test_same_month_checks_the_month_and_year_a_temporal_gold_names() -> None:
    assert same_month("19 January 2023.", "19 January, 2023")
    assert same_month("The week before 30 January 2023.", "January, 2023")
    assert not same_month("The week before 20 June 2023.", "January, 2023")  # F1 0.29 still
    assert score_answer("The week before 20 June 2023.", "January, 2023", 2) > 0.25
    assert not same_month("19 January 2022.", "19 January, 2023")  # the wrong year
    assert same_month("In May, I think.", "May")  # no year in the gold: the month decides
    assert not same_month("Last spring.", "May 2023")
    assert same_month("2022", "A few years ago") is None  # no month to check


def scored(
    conversation: str, number: int, category: int, gold: str, prediction: str, **kwargs: Any
) -> ScoredAnswer:
    question = Question(f"{conversation}#{number}", f"Q{number}?", gold, category, (), conversation)
    answer = SystemAnswer(prediction, 1.0, 10, 3)
    return ScoredAnswer(question, answer, score_answer(prediction, gold, category), **kwargs)


def test_a_run_reports_exact_match_abstention_length_and_evidence_recall() -> None:
    run = SystemRun(
        "rag",
        "m",
        [
            scored("c1", 0, 4, "Porto", "Porto", evidence_found=True),
            scored("c1", 1, 4, "Ines", "It is not mentioned in the memory.", evidence_found=False),
            scored("c1", 2, 2, "May 2023", "In May 2023", evidence_found=True),
            scored("c1", 3, 5, "", "Not mentioned.", evidence_found=None),
            scored("c1", 4, 2, "1 June 2023", "The week before 9 July 2023", evidence_found=None),
            scored("c1", 5, 2, "Two years ago", "2021", evidence_found=None),
        ],
        1,
        1,
    )
    found = run.diagnostics()
    assert found["exact_match"] == pytest.approx(1 / 5)
    assert found["abstention_1_4"] == pytest.approx(1 / 5)  # category 5 does not count
    assert found["answer_words"] == pytest.approx((1 + 7 + 3 + 6 + 1) / 5)
    assert found["evidence_recall"] == pytest.approx(2 / 3)
    assert found["right_month"] == pytest.approx(1 / 2)  # "Two years ago" names no month
    summary = run.to_json()
    assert summary["exact_match"] == 0.2 and summary["evidence_recall"] == 0.6667
    assert summary["right_month"] == 0.5
    assert summary["answers"][0]["conversation"] == "c1"
    assert summary["answers"][1]["evidence_found"] is False


# -- conversations, pooling and paired intervals ---------------------------------------------------


def run_with(system: str, scores: dict[str, list[float]]) -> SystemRun:
    """A run whose category-4 answers score `scores[conversation][i]` (1 or 0)."""
    answers = [
        scored(conversation, i, 4, "yes", "yes" if value else "no")
        for conversation, values in scores.items()
        for i, value in enumerate(values)
    ]
    return SystemRun(system, "m", answers, 1, 1)


def test_scores_are_reported_per_conversation_and_pooled() -> None:
    run = run_with("native", {"c1": [1, 1, 0, 0], "c2": [1, 1]})
    per = run.conversation_scores()
    assert per["c1"].overall == 0.5 and per["c2"].overall == 1.0
    assert run.scores.overall == pytest.approx(4 / 6)  # each question counts once
    assert run.to_json()["conversations"]["c2"]["overall_f1"] == 1.0


def test_pooling_concatenates_each_systems_answers_across_memories() -> None:
    first = [run_with("native", {"c1": [1]}), run_with("rag", {"c1": [0]})]
    second = [run_with("native", {"c2": [1, 0]}), run_with("rag", {"c2": [1, 1]})]
    second[0].peak_rss_bytes = 5
    native, rag = pool_runs([first, second])
    assert (native.system, rag.system) == ("native", "rag")
    assert [a.question.id for a in native.answers] == ["c1#0", "c2#0", "c2#1"]
    assert native.peak_rss_bytes == 5 and native.memory_bytes == 2


def test_a_paired_difference_of_constant_gain_has_a_point_interval() -> None:
    better = run_with("native", {"c1": [1, 1, 1], "c2": [1, 1]})
    worse = run_with("rag", {"c1": [0, 0, 0], "c2": [0, 0]})
    difference = paired_difference(better, worse)
    assert difference is not None
    assert (difference.questions, difference.conversations) == (5, 2)
    assert difference.mean == difference.low == difference.high == 1.0


def test_the_interval_is_wider_when_the_gain_sits_in_one_conversation() -> None:
    """The same mean gain (0.5 on 40 questions) spread over both conversations, or all in one:
    resampling conversations makes the second far less certain."""
    baseline = run_with("rag", {"c1": [0] * 20, "c2": [0] * 20})
    spread = run_with("native", {"c1": [1, 0] * 10, "c2": [0, 1] * 10})
    lopsided = run_with("native", {"c1": [1] * 20, "c2": [0] * 20})
    even = paired_difference(spread, baseline)
    one_sided = paired_difference(lopsided, baseline)
    assert even is not None and one_sided is not None
    assert even.mean == one_sided.mean == 0.5
    assert even.low < 0.5 < even.high
    assert (one_sided.high - one_sided.low) > 2 * (even.high - even.low)
    assert one_sided.low == 0.0 and one_sided.high == 1.0  # both conversations can be drawn twice


def test_pairs_use_only_the_questions_both_answered_and_every_pair_is_reported() -> None:
    native = run_with("native", {"c1": [1, 1, 1, 1]})
    rag = run_with("rag", {"c1": [0, 0, 0, 0]})
    limited = SystemRun("long-context", "m", rag.answers[:2], 1, 1)
    differences = paired_differences([native, rag, limited])
    assert [(d.system, d.against, d.questions) for d in differences] == [
        ("native", "rag", 4),
        ("native", "long-context", 2),
        ("rag", "long-context", 2),
    ]
    assert differences[0].to_json()["ci95"] == [1.0, 1.0]


def test_system_limits_are_parsed_and_bad_ones_named() -> None:
    assert parse_system_limits(["long-context=30", "rag=2"]) == {"long-context": 30, "rag": 2}
    with pytest.raises(RagtuneError, match="'long-context' is not SYSTEM=N"):
        parse_system_limits(["long-context"])
    with pytest.raises(RagtuneError, match="unknown system 'graph'"):
        parse_system_limits(["graph=3"])


# -- `ragtune eval` over two memories --------------------------------------------------------------


@pytest.fixture(scope="module")
def two_memories(
    tiny_model_dir: Path, tiny_memory: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Path], Path]:
    """The shared tiny memory (conv-tiny) and a second one of another conversation, and one
    LoCoMo file with both conversations."""
    from ragtune.testing import build_tiny_memory

    folder = tmp_path_factory.mktemp("two-memories")
    other = write(folder / "other.json", json.dumps([tiny_locomo_conversation("conv-other")]))
    second = build_tiny_memory(folder / "other", tiny_model_dir, other)
    both = [tiny_locomo_conversation(), tiny_locomo_conversation("conv-other")]
    questions = write(folder / "both.json", json.dumps(both))
    return [Path(tiny_memory.root), second], questions


def test_ragtune_eval_pools_two_memories_with_the_oracle_and_intervals(
    cli_runner: CliRunner, two_memories: tuple[list[Path], Path], tmp_path: Path
) -> None:
    (first, second), questions = two_memories
    out = tmp_path / "report"
    result = cli_runner.invoke(
        cli,
        [
            "-q", "eval", str(first), str(second), "--questions", str(questions),
            "--systems", "native,rag,long-context,oracle", "--system-limit", "long-context=2",
            "--out", str(out), "--max-new-tokens", "4", "--device", "cpu",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    runs = {run["system"]: run for run in results["systems"]}
    assert set(runs["native"]["conversations"]) == {"conv-tiny", "conv-other"}
    assert len(runs["native"]["answers"]) == 10  # every question of both conversations
    assert len(runs["long-context"]["answers"]) == 4  # two per memory
    oracle = {a["id"]: a for a in runs["oracle"]["answers"]}
    assert oracle["conv-other#3"]["unit_ids"] == ["conv-other:D3:1", "conv-other:D3:2"]
    assert oracle["conv-tiny#0"]["unit_ids"] == ["conv-tiny:D1:1"]
    assert runs["rag"]["evidence_recall"] is not None and runs["native"]["evidence_recall"] is None
    assert all(isinstance(a["evidence_found"], bool) for a in runs["rag"]["answers"])
    pairs = {(p["system"], p["against"]): p for p in results["paired"]}
    assert pairs[("native", "rag")]["questions"] == 8  # categories 1-4 of both
    limited = [a for a in runs["long-context"]["answers"] if a["category"] != 5]
    assert pairs[("native", "long-context")]["questions"] == len(limited)
    assert pairs[("native", "rag")]["conversations"] == 2
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Each conversation" in report and "| conv-other | conv-tiny | pooled |" in report
    assert "## Paired F1 differences" in report and "| native − rag | 8 | 2 |" in report
    assert "long-context 2 per workspace" in report


def test_ragtune_eval_leaves_the_oracle_out_for_memories_without_conversation_turns(
    cli_runner: CliRunner, tiny_notes_memory: Path, tmp_path: Path
) -> None:
    import dataclasses
    import shutil

    from ragtune.corpus.tables import read_documents, read_text_units, write_documents
    from ragtune.workspace import Workspace

    memory = Workspace.at(shutil.copytree(tiny_notes_memory, tmp_path / "notes"))
    documents = read_documents(memory.documents_path)
    assert any(document.turns for document in documents)
    notes_only = [dataclasses.replace(document, turns=()) for document in documents]
    write_documents(memory.documents_path, notes_only, read_text_units(memory.text_units_path))
    questions = write(tmp_path / "q.jsonl", '{"question": "Who?", "answer": "Ann"}\n')
    args = ["-q", "eval", str(memory.root), "--questions", str(questions)]
    out = tmp_path / "o"
    result = cli_runner.invoke(
        cli, [*args, "--systems", "", "--out", str(out), "--max-new-tokens", "2"]
    )
    assert result.exit_code == 0, result.output
    systems = [s["system"] for s in json.loads((out / "results.json").read_text())["systems"]]
    assert "oracle" not in systems and "native" in systems
    result = cli_runner.invoke(cli, [*args, "--systems", "oracle"])
    assert result.exit_code == 1
    assert "error: the oracle system needs the memory's conversation turns" in result.output


def test_a_run_reads_back_from_its_results_json() -> None:
    from ragtune.eval.runner import run_from_json

    run = SystemRun(
        "rag",
        "m",
        [
            scored("c1", 0, 4, "Porto", "Porto", evidence_found=True),
            scored("c2", 1, 5, "", "Not mentioned."),
        ],
        7,
        9,
    )
    back = run_from_json(json.loads(json.dumps(run.to_json())))
    assert back.to_json() == run.to_json()
    assert back.answers[0].question.conversation == "c1" and back.answers[0].evidence_found
