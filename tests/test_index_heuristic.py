"""The heuristic extractor and the whole index pipeline on real data, with no model.

The LoCoMo dev conversations (../shared/data) and the sample notes (examples/sample_corpus) are
ingested once per module with the tiny test tokenizer and indexed with the heuristic extractor.
Expected names and dates are read from the LoCoMo file itself, or were checked against it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ragtune.config import MemoryConfig, load_config
from ragtune.corpus import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.index.heuristic import HeuristicExtractor
from ragtune.index.pipeline import IndexReport, build_index
from ragtune.index.tables import read_index
from ragtune.index.types import DEFAULT_ENTITY_TYPES, Entity, MemoryIndex
from ragtune.ingestion import ingest
from ragtune.text.names import normalize_name
from ragtune.workspace import Workspace

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"
#: A resolved date as a description quotes it: "(yesterday = 7 May 2023)".
RESOLVED_DATE = re.compile(
    r"\([^()]* = (?:\d{1,2} [A-Z][a-z]+ \d{4}|[A-Z][a-z]+ \d{4}|\d{4}|the \w+ (?:of|before|after) "
    r"\d{1,2} [A-Z][a-z]+ \d{4}|[a-z ]+ before \d{1,2} [A-Z][a-z]+ \d{4})[;)]"
)


@dataclass(frozen=True)
class Built:
    """An indexed workspace."""

    workspace: Workspace
    report: IndexReport
    units: list[TextUnit]
    index: MemoryIndex

    def entity(self, name: str) -> Entity | None:
        """The entity whose name normalizes like `name`, if any."""
        key = normalize_name(name)
        return next((e for e in self.index.entities if normalize_name(e.title) == key), None)


def config_for(corpus: Path, tiny_model_dir: Path) -> MemoryConfig:
    return load_config(
        None,
        [
            f"corpus.path={corpus}",
            f"chunking.tokenizer=hf:{tiny_model_dir}",
            "index.extractor=heuristic",
        ],
    )


def build(root: Path, corpus: Path, tiny_model_dir: Path) -> Built:
    workspace = Workspace.at(root, create=True)
    config = config_for(corpus, tiny_model_dir)
    ingest(workspace, config, progress=False)
    report = build_index(workspace, config, progress=False)
    return Built(
        workspace, report, read_text_units(workspace.text_units_path), read_index(workspace)
    )


@pytest.fixture(scope="module")
def locomo(
    locomo_dev: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Built:
    return build(tmp_path_factory.mktemp("locomo") / "memory", locomo_dev, tiny_model_dir)


@pytest.fixture(scope="module")
def locomo_records(locomo_dev: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(locomo_dev.read_text(encoding="utf-8"))
    return records


@pytest.fixture(scope="module")
def sample(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("sample") / "memory", SAMPLE_CORPUS, tiny_model_dir)


def turns(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every turn of a LoCoMo conversation, with its session's date_time."""
    conversation = record["conversation"]
    return [
        (conversation[f"{key}_date_time"], turn)
        for key, value in conversation.items()
        if re.fullmatch(r"session_\d+", key)
        for turn in value
    ]


def without_period(index: MemoryIndex) -> MemoryIndex:
    return MemoryIndex(
        index.entities,
        index.relationships,
        [replace(c, period="") for c in index.communities],
        [replace(r, period="") for r in index.reports],
    )


# --- LoCoMo: entities -------------------------------------------------------------------------


def test_every_speaker_is_a_person_entity(
    locomo: Built, locomo_records: list[dict[str, Any]]
) -> None:
    speakers = {
        record["conversation"][side]
        for record in locomo_records
        for side in ("speaker_a", "speaker_b")
    }
    assert len(speakers) == 2 * len(locomo_records)

    for speaker in speakers:
        entity = locomo.entity(speaker)
        assert entity is not None, f"speaker {speaker} is not an entity"
        assert entity.title == speaker
        assert entity.type == "person"
        # A speaker is mentioned by most units of their conversation.
        assert entity.frequency >= 50
        assert entity.degree > 0


#: Capitalized names written mid-sentence in the LoCoMo dev turns, with the type they should get.
NAMED = {
    "London": "geo",  # conv-41: "It was in London."
    "England": "geo",  # conv-41: "that trip to England a few years ago"
    "Spain": "geo",  # conv-41: "took this pic in Spain"
    "Oregon": "geo",  # conv-41: "a road trip to Oregon"
    "Florida": "geo",  # conv-41: "a vacation in Florida"
    "Pacific Northwest": "geo",  # conv-41: "up in the Pacific Northwest"
    "Amy Ellis Nutt": "person",  # conv-26: '"Becoming Nicole" by Amy Ellis Nutt'
    "Matt Patterson": "person",  # conv-26: "It was Matt Patterson, he is so talented!"
    "Sara Bareilles": "person",  # conv-26: '"Brave" by Sara Bareilles'
    "Ed Sheeran": "person",  # conv-26: "modern music like Ed Sheeran's "Perfect""
}


def test_named_entities_mentioned_mid_sentence_are_found_with_their_type(
    locomo: Built, locomo_records: list[dict[str, Any]]
) -> None:
    texts = [turn["text"] for record in locomo_records for _, turn in turns(record)]
    for name, kind in NAMED.items():
        # The name is in the data, after a lowercase word or a comma: not a sentence start.
        assert any(re.search(rf"[a-z,] {re.escape(name)}\b", text) for text in texts), name
        entity = locomo.entity(name)
        assert entity is not None, f"{name} is not an entity"
        assert entity.title == name
        assert entity.type == kind, f"{name} is typed {entity.type}"
        assert name in entity.description


def test_a_name_followed_by_a_dash_has_no_trailing_hyphen(locomo: Built) -> None:
    california = locomo.entity("California")
    assert california is not None
    assert california.title == "California"


def test_dated_events_have_resolved_dates(locomo: Built) -> None:
    events = [e for e in locomo.index.entities if e.type == "event"]

    assert len(events) >= 50
    dated = [e for e in events if RESOLVED_DATE.search(e.description)]
    # An event is the main phrase of a sentence with a time expression; most expressions
    # resolve against the session date (a few, like "Last Fri", are not recognized).
    assert len(dated) >= len(events) // 2, [e.title for e in events if e not in dated]


def test_support_group_yesterday_is_dated_7_may_2023(
    locomo: Built, locomo_records: list[dict[str, Any]]
) -> None:
    said = "I went to a LGBTQ support group yesterday"
    [(date_time, turn)] = [
        (date_time, turn) for date_time, turn in turns(locomo_records[0]) if said in turn["text"]
    ]
    assert date_time.endswith("on 8 May, 2023")
    assert turn["speaker"] == "Caroline"

    matches = [
        e
        for e in locomo.index.entities
        if "support group" in e.title.lower() and "7 May 2023" in e.description
    ]

    assert matches, "no support-group entity dated 7 May 2023"
    [event] = matches
    assert event.type == "event"
    assert (
        f"Caroline said on 8 May 2023: {said} and it was so powerful. (yesterday = 7 May 2023)"
        in event.description
    )
    unit = next(u for u in locomo.units if u.id == event.text_unit_ids[0])
    assert said in unit.text
    assert unit.timestamp is not None and unit.timestamp.startswith("2023-05-08")


# --- LoCoMo: provenance and graph -------------------------------------------------------------


def test_every_entity_and_relationship_cites_existing_text_units(locomo: Built) -> None:
    unit_ids = {unit.id for unit in locomo.units}
    assert locomo.index.entities and locomo.index.relationships

    for entity in locomo.index.entities:
        assert entity.text_unit_ids, entity.title
        assert set(entity.text_unit_ids) <= unit_ids, entity.title
        assert entity.frequency == len(entity.text_unit_ids)
    for relationship in locomo.index.relationships:
        assert relationship.text_unit_ids, relationship.id
        assert set(relationship.text_unit_ids) <= unit_ids, relationship.id


def test_relationship_endpoints_are_entity_titles(locomo: Built) -> None:
    titles = {entity.title for entity in locomo.index.entities}
    assert len(titles) == len(locomo.index.entities)

    for relationship in locomo.index.relationships:
        assert relationship.source in titles
        assert relationship.target in titles
        assert relationship.source != relationship.target
        assert relationship.weight >= 1


def test_ids_are_unique(locomo: Built) -> None:
    index = locomo.index
    for items in (index.entities, index.relationships, index.communities, index.reports):
        ids = [item.id for item in items]
        assert len(set(ids)) == len(ids)


def test_report_counts_match_the_tables(locomo: Built) -> None:
    report, index = locomo.report, locomo.index

    assert report.extractor == "heuristic"
    assert report.text_units == report.extracted == len(locomo.units)
    assert report.failures == []
    assert report.teacher_calls == 0
    assert report.entities == len(index.entities)
    assert report.relationships == len(index.relationships)
    assert report.communities_per_level == index.communities_per_level()
    assert report.reports == len(index.reports)
    saved = json.loads(locomo.workspace.index_summary_path.read_text(encoding="utf-8"))
    assert saved["entities"] == report.entities
    assert saved["extractor"] == "heuristic"


# --- LoCoMo: determinism and speed ------------------------------------------------------------


def test_extracting_the_same_units_twice_gives_equal_results(locomo: Built) -> None:
    units = locomo.units[:60]

    first = HeuristicExtractor(DEFAULT_ENTITY_TYPES).extract(units)
    second = HeuristicExtractor(DEFAULT_ENTITY_TYPES).extract(units)

    assert first == second
    assert sum(len(e.entities) for e in first) > 0


def test_two_builds_give_identical_tables(
    locomo: Built, locomo_dev: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    again = build(tmp_path / "again", locomo_dev, tiny_model_dir)

    assert [u.id for u in again.units] == [u.id for u in locomo.units]
    assert again.index.entities == locomo.index.entities
    assert again.index.relationships == locomo.index.relationships
    assert without_period(again.index) == without_period(locomo.index)


def test_the_locomo_dev_file_indexes_well_under_a_minute(locomo: Built) -> None:
    # A coarse guard (about 1.5 s today), not a benchmark.
    assert locomo.report.seconds < 60


# --- LoCoMo: communities and reports ----------------------------------------------------------


def test_community_hierarchy(locomo: Built) -> None:
    communities = locomo.index.communities
    by_number = {c.community: c for c in communities}

    assert len(by_number) == len(communities)  # numbers are unique across levels
    levels = sorted({c.level for c in communities})
    assert levels == list(range(len(levels)))  # 0, 1, ... with no gap
    assert len(levels) >= 2  # LoCoMo's big speaker communities are split again
    for community in communities:
        assert community.size == len(community.entity_ids) > 0
        if community.level == 0:
            assert community.parent == -1
        else:
            parent = by_number[community.parent]
            assert parent.level == community.level - 1
            assert community.community in parent.children
            assert set(community.entity_ids) <= set(parent.entity_ids)
        for child in community.children:
            assert by_number[child].parent == community.community


def test_level0_covers_exactly_the_connected_entities(locomo: Built) -> None:
    level0: list[str] = [e for c in locomo.index.communities if c.level == 0 for e in c.entity_ids]

    assert len(level0) == len(set(level0))  # level-0 communities do not overlap
    connected = {e.id for e in locomo.index.entities if e.degree > 0}
    assert set(level0) == connected


def test_one_report_per_community(locomo: Built) -> None:
    reports = locomo.index.reports
    communities = {c.community: c for c in locomo.index.communities}

    assert sorted(r.community for r in reports) == sorted(communities)
    for report in reports:
        community = communities[report.community]
        assert (report.level, report.parent, report.children, report.size) == (
            community.level,
            community.parent,
            community.children,
            community.size,
        )
        assert report.title.strip()
        assert report.summary.startswith(f"A community of {community.size} entities")
        assert report.findings
        assert report.full_content.startswith(f"# {report.title}")
        assert 0 <= report.rank <= 10
        assert json.loads(report.full_content_json)["title"] == report.title
        assert report.generated_by == "extractive"
    for level in {r.level for r in reports}:
        assert max(r.rank for r in reports if r.level == level) == 10


# --- the sample corpus ------------------------------------------------------------------------

SAMPLE_NAMES = {
    "Rui Matos": "person",
    "Forno Azul": "organization",
    "Helena Sousa": "person",  # written "Dr. Helena Sousa": the title is not part of the name
    "Livraria Bertrand": "organization",
    "Tagus Kayak Club": "organization",
    "Oceano Vivo Foundation": "organization",
    "Rachel Carson": "person",
    "José Saramago": "person",
    "Porto": "geo",  # "moved to Porto", and "the Porto cornbread prize"
    "Belém": "geo",  # "the Tagus Kayak Club in Belém"
    "Chiado": "geo",
    "Sintra": "geo",
    "Arrábida": "geo",
    "Faísca": "person",  # the dog; there is no animal type
}


def test_sample_corpus_names_are_found(sample: Built) -> None:
    for name, kind in SAMPLE_NAMES.items():
        entity = sample.entity(name)
        assert entity is not None, f"{name} is not an entity"
        assert entity.title == name
        assert entity.type == kind, f"{name} is typed {entity.type}"
    assert sample.entity("Dr. Helena Sousa") is None  # no duplicate with the title kept


def test_sample_corpus_relationships_and_dates(sample: Built) -> None:
    pairs = {frozenset((r.source, r.target)) for r in sample.index.relationships}

    assert frozenset(("Livraria Bertrand", "Chiado")) in pairs  # "at Livraria Bertrand in Chiado"
    assert frozenset(("Clara", "Porto")) in pairs  # "My sister Clara moved to Porto"
    assert frozenset(("Tagus Kayak Club", "Belém")) in pairs
    clara = sample.entity("Clara")
    assert clara is not None
    assert "(this weekend = the weekend of 3 February 2024)" in clara.description
    saramago = sample.entity("José Saramago")
    assert saramago is not None
    assert "(Next month = July 2024)" in saramago.description  # written 18 June 2024
    faisca = sample.entity("Faísca")
    assert faisca is not None
    assert len(faisca.text_unit_ids) == 2  # the adoption note and the call with Clara


def test_sentences_wrapped_over_lines_stay_whole(sample: Built) -> None:
    rui = sample.entity("Rui Matos")
    assert rui is not None
    assert "former national team paddler" in rui.description
    assert rui.degree > 0


def test_a_doctor_named_once_is_found(sample: Built) -> None:
    pinto = sample.entity("Pinto")
    assert pinto is not None
    assert pinto.type == "person"
