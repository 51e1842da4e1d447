"""`ragtune.eval` around the scorer: question files, the category-keeping `--limit`, the LLM
judge (a fake teacher stands in for a remote judge) in both answer orders, the report, and
`ragtune eval` end to end on a small trained memory."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ragtune.baselines import SYSTEM_NAMES, SystemAnswer
from ragtune.cli import cli
from ragtune.cli import evaluate as _register_eval  # noqa: F401  (adds eval to cli)
from ragtune.errors import RagtuneError
from ragtune.eval.judge import CRITERIA, combine_orders, judge_runs
from ragtune.eval.questions import Question, load_questions, pick
from ragtune.eval.report import latency_ratios, markdown_report
from ragtune.eval.runner import ScoredAnswer, SystemRun, latency_summary
from ragtune.llm.types import ChatRequest
from ragtune.testing import tiny_locomo_conversation
from support import FunctionChatBackend, minimal_locomo_record, write

# -- questions -------------------------------------------------------------------------------------


def test_locomo_questions_are_those_of_the_workspaces_conversations(tmp_path: Path) -> None:
    other = minimal_locomo_record("conv-other")
    other["qa"] = [{"question": "Who said hi?", "answer": "Ann", "category": 4}]
    path = write(tmp_path / "locomo.json", json.dumps([other, tiny_locomo_conversation()]))
    questions = load_questions(path, conversations={"conv-tiny"})
    assert [q.id for q in questions] == [f"conv-tiny#{i}" for i in range(5)]
    assert [q.category for q in questions] == [4, 4, 2, 1, 5]
    assert questions[0].answer == "Pixel" and questions[0].evidence == ("D1:1",)
    assert questions[4].answer == "Pixel"  # category 5 keeps its adversarial answer
    assert len(load_questions(path)) == 6  # no workspace filter: every conversation


def test_a_locomo_file_without_the_workspaces_conversations_names_what_it_has(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "locomo.json", json.dumps([tiny_locomo_conversation()]))
    with pytest.raises(RagtuneError, match=r"conversations \(conv-30\); it has conv-tiny"):
        load_questions(path, conversations={"conv-30"})


def test_jsonl_questions_and_their_errors(tmp_path: Path) -> None:
    good = write(
        tmp_path / "q.jsonl",
        '{"question": "Who?", "answer": "Ann", "category": 1}\n\n'
        '{"question": "How many?", "answer": 3}\n',
    )
    questions = load_questions(good)
    assert [(q.id, q.answer, q.category) for q in questions] == [
        ("q.jsonl:1", "Ann", 1),
        ("q.jsonl:3", "3", 4),  # no category: plain token F1
    ]
    bad = write(tmp_path / "bad.jsonl", '{"question": "Who?", "answer": "Ann"}\n{"answer": 1}\n')
    with pytest.raises(RagtuneError, match=r'bad\.jsonl: line 2: has no "question" text'):
        load_questions(bad)
    wrong = write(tmp_path / "cat.jsonl", '{"question": "Q?", "answer": "A", "category": 9}\n')
    with pytest.raises(RagtuneError, match="line 1: category 9 is not a LoCoMo category"):
        load_questions(wrong)
    with pytest.raises(RagtuneError, match="no such questions file"):
        load_questions(tmp_path / "missing.jsonl")


def questions_of(categories: str) -> list[Question]:
    return [Question(f"q{i}", f"Q{i}?", "A", int(c)) for i, c in enumerate(categories)]


def test_a_limit_keeps_every_categorys_share_in_file_order() -> None:
    # conv-30's order: mostly 1 and 2 first, then 4, then 5.
    questions = questions_of("2241412221" + "4" * 20 + "5" * 10)
    chosen = pick(questions, 10)
    assert len(chosen) == 10
    counts = {c: sum(q.category == c for q in chosen) for c in (1, 2, 4, 5)}
    # Shares of 10 for 3, 5, 22 and 10 of 40: 0.75, 1.25, 5.5, 2.5 → 1, 1, 5, 2 and the one
    # left to the largest remainder (category 1).
    assert counts == {1: 2, 2: 1, 4: 5, 5: 2}
    assert [q.id for q in chosen] == sorted((q.id for q in chosen), key=lambda i: int(i[1:]))
    assert [q.id for q in chosen if q.category == 4][:2] == ["q2", "q4"]  # the first of each
    assert pick(questions, 3) and {q.category for q in pick(questions, 4)} == {1, 2, 4, 5}
    assert pick(questions, None) == questions and pick(questions, 99) == questions


# -- aggregates ------------------------------------------------------------------------------------


def run_of(system: str, answers: list[tuple[int, str, str, float]]) -> SystemRun:
    """A run whose answers are (category, gold, prediction, seconds)."""
    from ragtune.eval.locomo_scoring import score_answer

    scored = [
        ScoredAnswer(
            Question(f"q{i}", f"Question {i}?", gold, category),
            SystemAnswer(prediction, seconds, 100 * (i + 1), 5),
            score_answer(prediction, gold, category),
        )
        for i, (category, gold, prediction, seconds) in enumerate(answers)
    ]
    return SystemRun(system, "model", scored, peak_rss_bytes=2**30, memory_bytes=2**20)


def test_latency_median_and_p95() -> None:
    assert latency_summary([3.0, 1.0, 2.0]) == (2.0, 3.0)
    twenty = [float(i) for i in range(1, 21)]
    assert latency_summary(twenty) == (10.5, 19.0)  # nearest rank: the 19th of 20
    assert latency_summary([]) == (0.0, 0.0)


def test_the_markdown_report_states_scores_latency_and_ratios_side_by_side() -> None:
    native = run_of("native", [(4, "Porto", "Porto.", 0.5), (5, "", "That is not mentioned.", 1.5)])
    rag = run_of("rag", [(4, "Porto", "Lisbon", 2.0), (5, "", "Lisbon", 4.0)])
    assert latency_ratios([native, rag]) == {"native/rag": 0.3333}
    text = markdown_report([native, rag], setup={"reader": "tiny"})
    tables = markdown_tables(text)
    rows = {line.split(" | ")[0].strip("| "): line for line in tables[0]}
    assert "4 single-hop (n=1)" in rows["system"]
    assert rows["native"].split(" | ")[1:5] == ["1.000", "1.000", "1.000", "1.00"]
    assert rows["rag"].split(" | ")[1:3] == ["0.000", "0.000"]
    assert "native/rag = 0.33" in text and "- reader: tiny" in text
    for table in tables:  # every row has its header's columns
        assert len({line.count("|") for line in table}) == 1, table


def markdown_tables(text: str) -> list[list[str]]:
    """The tables of a markdown text, each as its lines."""
    tables: list[list[str]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


# -- the judge -------------------------------------------------------------------------------------


def shown_answers(prompt: str) -> tuple[str, str]:
    """The two answers of a pairwise judge prompt, in the order shown."""
    first = prompt.split("Answer 1: ")[1].split("\n\nAnswer 2: ")[0]
    return first, prompt.split("Answer 2: ")[1].split("\n\nReply")[0]


def fake_judge(pairwise: Callable[[str, str], int]) -> FunctionChatBackend:
    """A fake judge (a remote judge model cannot run here): CORRECT when the graded answer
    contains the gold answer; pairwise, `pairwise(answer_1, answer_2)` on every criterion."""

    def respond(request: ChatRequest) -> str:
        text = request.messages[0]["content"]
        if "Gold answer:" in text:
            gold = text.split("Gold answer: ")[1].split("\n")[0]
            graded = text.split("Answer to grade: ")[1].split("\n")[0]
            return json.dumps({"label": "CORRECT" if gold in graded else "WRONG"})
        return json.dumps(dict.fromkeys(CRITERIA, pairwise(*shown_answers(text))))

    return FunctionChatBackend(respond)


def judged_runs() -> list[SystemRun]:
    native = run_of("native", [(4, "Porto", "Porto, by the river.", 1), (2, "May", "In May.", 1)])
    rag = run_of("rag", [(4, "Porto", "Lisbon", 1), (2, "May", "May", 1)])
    return [native, rag]


def test_the_judge_grades_correctness_and_prefers_consistently_in_both_orders() -> None:
    runs = judged_runs()
    judge = fake_judge(lambda a, b: 1 if len(a) > len(b) else 2)  # prefers the longer answer
    report = judge_runs(judge, runs)
    assert report.correct == {"native": 1.0, "rag": 0.5}
    assert runs[1].judged == [False, True]
    (tally,) = report.pairwise
    assert (tally.system, tally.against) == ("native", "rag")
    assert tally.wins == dict.fromkeys(CRITERIA, 2) and tally.ties == dict.fromkeys(CRITERIA, 0)
    pairs = [r for r in judge.received if "Answer 1:" in r.messages[0]["content"]]
    shown_first = [r.messages[0]["content"].split("Answer 1: ")[1][:6] for r in pairs]
    assert shown_first == ["Porto,", "Lisbon", "In May", "May\n\nA"]  # both orders asked
    assert report.failures == 0


def test_a_judge_that_prefers_whatever_comes_first_yields_only_ties() -> None:
    report = judge_runs(fake_judge(lambda a, b: 1), judged_runs())
    (tally,) = report.pairwise
    assert tally.ties == dict.fromkeys(CRITERIA, 2)
    assert tally.wins == tally.losses == dict.fromkeys(CRITERIA, 0)


def test_orders_combine_into_a_winner_only_when_they_agree() -> None:
    agree = combine_orders(dict.fromkeys(CRITERIA, 2), dict.fromkeys(CRITERIA, 1))
    assert set(agree.values()) == {"second"}
    missing = combine_orders(None, dict.fromkeys(CRITERIA, 2))
    assert set(missing.values()) == {"tie"}


def test_unreadable_judge_replies_count_as_failures_not_verdicts() -> None:
    runs = judged_runs()
    report = judge_runs(FunctionChatBackend(lambda request: "no idea"), runs)
    assert report.failures > 0
    assert runs[0].judged == [None, None]
    assert report.pairwise[0].ties == dict.fromkeys(CRITERIA, 2)


# -- `ragtune eval` --------------------------------------------------------------------------------


def test_ragtune_eval_writes_results_report_and_charts(
    cli_runner: CliRunner, tiny_memory: Any, tiny_locomo_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = cli_runner.invoke(
        cli,
        [
            "-q", "eval", str(tiny_memory.root), "--questions", str(tiny_locomo_file),
            "--limit", "4", "--out", str(out), "--max-new-tokens", "6", "--device", "cpu",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [s["system"] for s in results["systems"]] == list(SYSTEM_NAMES)
    for system in results["systems"]:
        assert len(system["answers"]) == 4
        assert {a["category"] for a in system["answers"]} == {1, 2, 4, 5}
        for answer in system["answers"]:
            assert 0 <= answer["score"] <= 1 and answer["seconds"] > 0
            assert answer["completion_tokens"] <= 6
        assert system["latency_p95_s"] >= system["latency_median_s"] > 0
        assert system["peak_rss_bytes"] > 0
    assert set(results["latency_ratios"]) == {f"native/{n}" for n in SYSTEM_NAMES[1:]}
    report = (out / "report.md").read_text(encoding="utf-8")
    assert all(f"| {name} |" in report for name in SYSTEM_NAMES)
    for chart in ("f1_per_category.png", "latency.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| native |" in result.output and f"wrote {out / 'results.json'}" in result.output


def test_ragtune_eval_of_base_systems_needs_no_adapter_and_names_bad_systems(
    cli_runner: CliRunner, tiny_memory: Any, tiny_locomo_file: Path, tmp_path: Path
) -> None:
    args = ["-q", "eval", str(tiny_memory.root), "--questions", str(tiny_locomo_file)]
    result = cli_runner.invoke(
        cli, [*args, "--systems", "base", "--adapter", "missing", "--limit", "1",
              "--out", str(tmp_path / "o"), "--max-new-tokens", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = cli_runner.invoke(cli, [*args, "--systems", "native,graphrag"])
    assert result.exit_code == 1
    assert "error: unknown system 'graphrag'; choose from native, rag" in result.output


def test_ragtune_eval_asks_a_judge_over_http_in_both_orders(
    cli_runner: CliRunner, tiny_memory: Any, tiny_locomo_file: Path, tmp_path: Path
) -> None:
    """`--judge openai:...@URL`: the fake judge (a stand-in for a remote judge model) is served
    over the real OpenAI-compatible HTTP server on loopback."""
    from ragtune.llm.openai_server import OpenAICompatibleServer

    judge = fake_judge(lambda a, b: 1 if len(a) > len(b) else 2)
    out = tmp_path / "judged"
    with OpenAICompatibleServer(judge) as server:
        result = cli_runner.invoke(
            cli,
            [
                "-q", "eval", str(tiny_memory.root), "--questions", str(tiny_locomo_file),
                "--systems", "native,base", "--limit", "2", "--out", str(out),
                "--max-new-tokens", "4", "--device", "cpu",
                "--judge", f"openai:judge@{server.base_url}",
            ],
            env={"OPENAI_API_KEY": "unused"},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    verdicts = results["judge"]
    assert verdicts["failures"] == 0 and set(verdicts["correct"]) == {"native", "base"}
    (pair,) = verdicts["pairwise"]
    assert (pair["system"], pair["against"]) == ("native", "base")
    for criterion in CRITERIA:
        assert pair["wins"][criterion] + pair["ties"][criterion] + pair["losses"][criterion] == 2
    prompts = [request.messages[0]["content"] for request in judge.received]
    shown = {shown_answers(prompt) for prompt in prompts if "Answer 1:" in prompt}
    native, base = ([a["prediction"] for a in s["answers"]] for s in results["systems"])
    for mine, theirs in zip(native, base, strict=True):  # each pair was shown in both orders
        assert (mine, theirs) in shown and (theirs, mine) in shown
    assert all("judged_correct" in a for s in results["systems"] for a in s["answers"])
    assert "## Judge: judge" in (out / "report.md").read_text(encoding="utf-8")
