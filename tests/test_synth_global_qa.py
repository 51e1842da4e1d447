"""Global questions (`global_qa`) on a real LoCoMo slice (conv-26, sessions 1-4: Caroline and
Melanie, May to June 2023, heuristic index): answered from community reports, without a teacher
and mapped and reduced by a fake teacher, and timelines of what a person said.

The strategies run once per module, in the pipeline's order (each seeing the records of those
before it: the fixtures `heuristic` and `taught` of conftest.py), so the tests read their output.
"""

from __future__ import annotations

import datetime as dt
import re

from ragtune.synth.records import fact_id
from synth_runs import Run, group_by_fact, turn_speakers


def test_global_questions_are_answered_from_community_reports(heuristic: Run) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.global_qa
    by_fact = group_by_fact(heuristic.records("global_qa"))
    reports = {report.community: report for report in context.index.reports}
    communities = [c for c in context.index.communities if c.community in reports]
    assert len(communities) >= 3
    for community in communities:
        report = reports[community.community]
        group = by_fact[fact_id("global", f"community {community.id}")]
        assert len(group) == settings.per_community
        assert len({r.question for r in group}) == len(group)
        assert all(report.title in r.question for r in group)
        answer = group[0].answer
        assert all(r.answer == answer for r in group)
        assert answer.startswith(f"The main points about {report.title} are:\n")
        points = [line for line in answer.splitlines() if line.startswith("- ")]
        assert 1 <= len(points) <= settings.max_points
        assert points[0].startswith(f"- {report.findings[0].summary}: ")
        assert all(r.source_ids == context.in_order(community.text_unit_ids) for r in group)
        assert all(r.support is not None and report.full_content in r.support for r in group)
    memory = by_fact[fact_id("global", "memory")]
    assert [r.question for r in memory] == [
        "What are the main themes of your memory?",
        "What topics come up most often in your memory?",
    ]
    top = sorted((r for r in reports.values() if r.level == 0), key=lambda r: -r.rank)
    assert memory[0].answer.startswith(f"The main themes of the memory are:\n- {top[0].title}: ")


def test_timelines_list_what_a_person_said_oldest_first(heuristic: Run) -> None:
    records = heuristic.records("global_qa")
    timeline = [
        r for r in records if r.question.endswith("over time?") and "Caroline" in r.question
    ]
    assert timeline
    answer = timeline[0].answer
    assert answer.startswith("Over time, Caroline said:\n")
    days = re.findall(r"^- (\d{1,2} [A-Z][a-z]+ \d{4}): Caroline said “", answer, re.MULTILINE)
    assert len(days) >= 2
    dates = [dt.datetime.strptime(day, "%d %B %Y").date() for day in days]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert days[0] == "8 May 2023"
    assert "I went to a LGBTQ support group yesterday" in answer
    speakers = turn_speakers(heuristic.context)
    assert timeline[0].evidence and all(speakers[t] == "Caroline" for t in timeline[0].evidence)
    sessions = [int(t[1 : t.index(":")]) for t in timeline[0].evidence]
    assert sessions == sorted(sessions)
    assert len({r.fact_id for r in timeline}) == 1
    questions = {r.question for r in records}
    assert questions & {"How has Melanie changed over time?", "What happened to Melanie over time?"}


def test_global_questions_with_a_teacher_are_mapped_and_reduced(taught: Run) -> None:
    generated = taught.generated["global_qa"]
    community = [r for r in generated.records if not r.question.endswith("over time?")]
    assert community
    for group in group_by_fact(community).values():
        assert group[0].answer.startswith("Reduced: Point from ")
        assert all(r.answer == group[0].answer for r in group)
        assert not any("necklace" in r.question for r in group)
    assert not any("main themes of your memory" in r.question for r in generated.records)
    assert generated.dropped[("no relevant points", "global")] == 1
    assert generated.dropped[("malformed teacher output", "global")] == 1
    reduce_prompts = [p for p in taught.prompts if "\nKey points from reports" in p]
    assert reduce_prompts and not any("A useless point" in p for p in reduce_prompts)
    # timelines need no teacher: they are what the person said
    assert any(r.answer.startswith("Over time, Caroline said:") for r in generated.records)
