"""The index stage's other teacher steps with the fake teacher of `llm_index_scenario`:
description summaries and community reports (and their fallbacks), the response cache, and the
`ragtune index` command (in-process, with click's `CliRunner`) against the fake served on
loopback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llm_index_scenario import (
    ENTITY_NAMES,
    GOOD,
    MARKET,
    NOT_JSON,
    TABLES,
    answers,
    build,
    by_title,
    marker,
    pairs,
    summarized_name,
)
from ragtune.config import MemoryConfig
from ragtune.corpus.types import TextUnit
from ragtune.index.tables import read_index
from ragtune.llm import ChatRequest
from ragtune.llm.cache import CachedChatBackend
from ragtune.llm.openai_server import OpenAICompatibleServer
from ragtune.workspace import Workspace
from support import (
    FunctionChatBackend,
    Run,
    gazetteer_teacher,
    is_repair,
    report_json,
    request_kind,
    run_ragtune,
)

# --- teacher summaries and reports ---------------------------------------------------------------


def test_teacher_summaries_combine_descriptions_from_several_units(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=llm", "index.reports=extractive"
    )
    teacher = FunctionChatBackend(answers())

    report = build(workspace, config, teacher)

    summarized = [r for r in teacher.received if request_kind(r) == "summarize"]
    names = sorted(summarized_name(r) for r in summarized)
    assert names == ["Ana Matos", "Rui Matos", "Rui Matos and Tidewater Kayaks", "Tidewater Kayaks"]
    [rui_request] = [r for r in summarized if summarized_name(r) == "Rui Matos"]
    prompt = rui_request.messages[-1]["content"]
    assert "- Founded Tidewater Kayaks.\n- Has a sister, Ana Matos." in prompt
    assert report.summarized == 4
    assert report.teacher_calls == 3 + 4
    index = read_index(workspace)
    entities = by_title(index)
    assert entities["Rui Matos"].description == "TEACHER: Rui Matos"
    assert entities["Ana Matos"].description == "TEACHER: Ana Matos"
    assert entities["Porto"].description == "The city of Tidewater Kayaks."  # one description
    company = pairs(index)[frozenset(("Rui Matos", "Tidewater Kayaks"))]
    assert company.description == "TEACHER: Rui Matos and Tidewater Kayaks"


def test_an_empty_teacher_summary_keeps_the_extractive_description(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=llm", "index.reports=extractive"
    )

    def summarize(request: ChatRequest) -> str:
        return "  \n" if summarized_name(request) == "Rui Matos" else "TEACHER"

    report = build(workspace, config, FunctionChatBackend(answers(summarize=summarize)))

    entities = by_title(read_index(workspace))
    assert entities["Rui Matos"].description == "Founded Tidewater Kayaks. Has a sister, Ana Matos."
    assert entities["Ana Matos"].description == "TEACHER"
    assert report.summarized == 3


def test_teacher_reports_carry_the_teachers_title_and_findings(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=llm"
    )

    def report(request: ChatRequest) -> str:
        entity_table = request.messages[-1]["content"].split("Relationships:")[0]
        members = sorted(n for n in ENTITY_NAMES if f",{n}," in entity_table)
        return report_json(
            "Teacher: " + " & ".join(members),
            [("Finding one", "Because the fake says so."), ("Finding two", "Also scripted.")],
            rating=7.5,
        )

    teacher = FunctionChatBackend(answers(report=report))

    result = build(workspace, config, teacher)

    index = read_index(workspace)
    assert index.reports and result.reports == len(index.communities)
    assert result.failed_reports == 0
    report_requests = [r for r in teacher.received if request_kind(r) == "report"]
    assert len(report_requests) == len(index.communities)
    ids = {e.id: e.title for e in index.entities}
    communities = {c.community: c for c in index.communities}
    for written in index.reports:
        assert written.generated_by == "llm"
        members = sorted(ids[e] for e in communities[written.community].entity_ids)
        assert written.title == "Teacher: " + " & ".join(members)
        assert [(f.summary, f.explanation) for f in written.findings] == [
            ("Finding one", "Because the fake says so."),
            ("Finding two", "Also scripted."),
        ]
        assert written.rank == 7.5
        assert "## Finding one" in written.full_content
        assert json.loads(written.full_content_json)["title"] == written.title


def test_a_report_never_matching_its_schema_falls_back_to_extractive(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=llm"
    )
    teacher = FunctionChatBackend(answers(report=lambda request: '{"title": "Only a title"}'))

    result = build(workspace, config, teacher)

    index = read_index(workspace)
    assert index.reports
    assert result.failed_reports == len(index.reports) == len(index.communities)
    assert all(r.generated_by == "extractive" for r in index.reports)
    assert all(r.title != "Only a title" for r in index.reports)
    report_requests = [r for r in teacher.received if request_kind(r) == "report"]
    assert len(report_requests) == len(index.reports) * (1 + teacher.structured_retries)
    repairs = [r for r in report_requests if is_repair(r)]
    assert len(repairs) == len(index.reports) * teacher.structured_retries
    assert all("is a required property" in r.messages[-1]["content"] for r in repairs)
    summary = json.loads(workspace.index_summary_path.read_text(encoding="utf-8"))
    assert summary["failed_reports"] == len(index.reports)


# --- the response cache --------------------------------------------------------------------------


def test_a_rerun_through_the_response_cache_makes_no_model_calls(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=1", "index.summaries=llm", "index.reports=llm"
    )

    def extract(request: ChatRequest) -> str:  # one repair, to cache it too
        if marker(request) == MARKET and not is_repair(request):
            return NOT_JSON
        return GOOD[marker(request)]

    first_fake = FunctionChatBackend(answers(extract))
    first_teacher = CachedChatBackend(first_fake, workspace.llm_cache_path)
    first = build(workspace, config, first_teacher)
    first_teacher.close()
    tables = {t: (workspace.root / f"{t}.parquet").read_bytes() for t in TABLES}
    index = read_index(workspace)
    assert first.teacher_calls == first_fake.stats.model_calls > 0
    assert first.cache_hits == 0
    assert first.summarized > 0 and first.failures == []
    assert any(r.generated_by == "llm" for r in index.reports)

    workspace.extractions_path.unlink()  # the response cache alone must suffice
    second_fake = FunctionChatBackend(answers(extract))
    second_teacher = CachedChatBackend(second_fake, workspace.llm_cache_path)
    second = build(workspace, config, second_teacher)
    second_teacher.close()

    assert second_fake.received == []
    assert second.teacher_calls == 0
    assert second.extracted == 3  # re-extracted, all from the cache
    assert second.cache_hits == second_teacher.hits > 0
    assert second_teacher.misses == 0
    assert read_index(workspace) == index
    assert {t: (workspace.root / f"{t}.parquet").read_bytes() for t in TABLES} == tables
    assert workspace.extractions_path.is_file()


# --- the command ---------------------------------------------------------------------------------

GAZETTEER = {
    "Rui Matos": "person",
    "Ana Matos": "person",
    "Tidewater Kayaks": "organization",
    "Porto": "geo",
    "Bolhao Market": "geo",
}
SUMMARY_LINE = re.compile(
    r"^indexed (\d+) text units \((\d+) extracted now, (\d+) failed\) with the llm extractor: "
    r"(\d+) entities, (\d+) relationships, (\d+) communities \(per level [\d/]+\), "
    r"(\d+) reports \(\d+ written, \d+ unchanged\); "
    r"teacher calls (\d+), cache hits (\d+); \d+\.\d s$"
)


@pytest.fixture
def served_teacher(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FunctionChatBackend, str]]:
    """The gazetteer fake served on loopback, and its base URL; the command reaches it directly
    (no proxy) with no API key."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    fake = gazetteer_teacher(GAZETTEER)
    with OpenAICompatibleServer(fake) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        yield fake, server.base_url


def run_index(*args: str | Path) -> Run:
    return run_ragtune("index", *args)


def test_ragtune_index_with_a_served_teacher(
    tmp_path: Path,
    corpus: Path,
    tiny_overrides: list[str],
    served_teacher: tuple[FunctionChatBackend, str],
) -> None:
    fake, base_url = served_teacher
    workspace = tmp_path / "memory"
    teacher = f"openai:fake@{base_url}"
    args: list[str | Path] = [workspace, "--corpus", corpus, "--teacher", teacher, *tiny_overrides]

    result = run_index(*args)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stdout.splitlines()
    match = SUMMARY_LINE.match(line)
    assert match, line
    units, extracted, failed, entities, relationships, communities, reports, calls, hits = (
        int(g) for g in match.groups()
    )
    index = read_index(Workspace.at(workspace))
    assert (units, extracted, failed) == (3, 3, 0)
    assert (entities, relationships) == (len(index.entities), len(index.relationships)) == (5, 5)
    assert communities == len(index.communities) == reports == len(index.reports) > 0
    assert calls == fake.stats.model_calls == len(fake.received) > 0
    assert hits == 0
    assert all(r.generated_by == "llm" for r in index.reports)
    summary = json.loads((workspace / "index.json").read_text(encoding="utf-8"))
    assert (summary["teacher_calls"], summary["extractor"]) == (calls, "llm")
    assert f"openai:fake@{base_url}" in (workspace / "memory.yaml").read_text(encoding="utf-8")

    again = run_index(*args)

    assert again.returncode == 0, again.stderr
    [line] = again.stdout.splitlines()
    match = SUMMARY_LINE.match(line)
    assert match, line
    assert "(0 extracted now, 0 failed)" in line
    assert "teacher calls 0," in line
    assert int(match.group(9)) > 0  # summaries and reports answered from the response cache
    assert fake.stats.model_calls == calls  # the served teacher got no new request
    assert read_index(Workspace.at(workspace)) == index
