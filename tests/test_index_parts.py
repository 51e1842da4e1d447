"""The index's parts one by one: name normalization, time resolution, description trimming,
merging, communities, extractive reports and the GraphRAG-shaped parquet tables."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ragtune.index.communities import detect_communities
from ragtune.index.merging import (
    entity_id,
    merge_extractions,
    trim_descriptions,
    with_degrees,
)
from ragtune.index.reports import community_contexts, extractive_report
from ragtune.index.tables import read_index, write_index
from ragtune.index.types import (
    Community,
    Entity,
    EntityMention,
    MemoryIndex,
    Relationship,
    RelationshipMention,
    UnitExtraction,
)
from ragtune.text.dates import resolve_time, time_expressions
from ragtune.text.names import normalize_name, singular
from ragtune.workspace import Workspace

# --- normalize_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Melanie", "melanie"),
        ("MELANIE", "melanie"),
        ("  melanie ", "melanie"),
        ("Melanie's", "melanie"),
        ("Melanie’s", "melanie"),  # typographic apostrophe
        ("Dr. Helena Sousa", "dr helena sousa"),
        ("Forno-Azul!", "forno azul"),
        ("the pottery classes", "pottery class"),
        ("The Pottery Class", "pottery class"),
        ("a dog", "dog"),
        ("an owl", "owl"),
        ("Faísca", "faísca"),
    ],
)
def test_normalize_name(name: str, key: str) -> None:
    assert normalize_name(name) == key


def test_normalize_name_composes_accents() -> None:
    decomposed = "Fai\u0301sca"  # i + combining acute accent
    assert normalize_name(decomposed) == normalize_name("Faísca")


def test_normalize_name_keeps_an_article_inside_a_name() -> None:
    assert normalize_name("Theresa") == "theresa"  # "the" only as a whole leading word
    assert normalize_name("Journey to the West") == "journey to the west"


def test_normalize_name_of_punctuation_only_is_empty() -> None:
    assert normalize_name("...") == ""
    assert normalize_name("  ") == ""


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("classes", "class"),
        ("parties", "party"),
        ("dogs", "dog"),
        ("boxes", "box"),
        ("dishes", "dish"),
        ("glass", "glass"),
        ("class", "class"),
        ("bus", "bus"),
        ("basis", "basis"),
        ("cats", "cat"),
        ("its", "its"),  # three letters or fewer: unchanged
        ("dog", "dog"),
    ],
)
def test_singular(word: str, expected: str) -> None:
    assert singular(word) == expected


def test_plural_only_on_the_last_word() -> None:
    assert normalize_name("dogs parties") == "dogs party"
    assert normalize_name("Pottery Classes") == normalize_name("pottery class")


# --- resolve_time -----------------------------------------------------------------------------

MONDAY = "2023-05-08T13:56:00"  # 8 May 2023 was a Monday


@pytest.mark.parametrize(
    ("expression", "written", "expected"),
    [
        ("yesterday", MONDAY, "7 May 2023"),
        ("Yesterday", MONDAY, "7 May 2023"),
        ("today", MONDAY, "8 May 2023"),
        ("last night", MONDAY, "7 May 2023"),
        ("last week", MONDAY, "the week before 8 May 2023"),
        ("last Saturday", MONDAY, "6 May 2023"),
        ("last Sunday", MONDAY, "7 May 2023"),
        ("last Monday", MONDAY, "1 May 2023"),  # the same weekday: a week back
        ("last month", MONDAY, "April 2023"),
        ("last month", "2023-01-10T09:00:00", "December 2022"),
        ("next month", "2023-12-20T09:00:00", "January 2024"),
        ("last year", MONDAY, "2022"),
        ("three days ago", MONDAY, "5 May 2023"),
        ("two years ago", MONDAY, "2021"),
        ("two months ago", "2023-01-10T09:00:00", "November 2022"),
        ("a few days ago", MONDAY, "a few days before 8 May 2023"),
    ],
)
def test_resolve_relative_time(expression: str, written: str, expected: str) -> None:
    assert resolve_time(expression, written) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("21 March 2024", "21 March 2024"),
        ("21st March, 2024", "21 March 2024"),
        ("May 5, 2022", "5 May 2022"),
        ("Sep 3, 2021", "3 September 2021"),
        ("March 2024", "March 2024"),
        ("2024-03-21", "21 March 2024"),
    ],
)
def test_resolve_explicit_dates_without_a_timestamp(expression: str, expected: str) -> None:
    assert resolve_time(expression, None) == expected
    assert resolve_time(expression, MONDAY) == expected  # the timestamp does not matter


@pytest.mark.parametrize("expression", ["yesterday", "last week", "last Saturday", "last month"])
def test_relative_time_without_a_timestamp_is_none(expression: str) -> None:
    assert resolve_time(expression, None) is None
    assert resolve_time(expression, "") is None
    assert resolve_time(expression, "not a date") is None


def test_impossible_explicit_date_is_none() -> None:
    assert resolve_time("31 February 2024", None) is None


def test_time_expressions_explicit_first_then_relative_in_order() -> None:
    text = "Yesterday I booked the 21 March 2024 flight; last week I paid, and May 5, 2022 too."

    assert time_expressions(text) == ["21 March 2024", "May 5, 2022", "Yesterday", "last week"]


# --- trim_descriptions ------------------------------------------------------------------------


def test_trim_descriptions_that_fit_are_joined_in_order() -> None:
    descriptions = ["First.", "Second.", "Third."]

    assert trim_descriptions(descriptions, 100) == "First. Second. Third."
    assert trim_descriptions(descriptions, len("First. Second. Third.")) == "First. Second. Third."


def test_trim_descriptions_of_nothing_is_empty() -> None:
    assert trim_descriptions([], 100) == ""


def test_trim_descriptions_too_long_keeps_first_and_last_in_order_within_budget() -> None:
    descriptions = [f"Sentence number {n:02d} of the memory." for n in range(12)]
    budget = 150

    trimmed = trim_descriptions(descriptions, budget)

    assert len(trimmed) <= budget
    kept = [d for d in descriptions if d in trimmed]
    assert kept[0] == descriptions[0]
    assert kept[-1] == descriptions[-1]
    assert 2 < len(kept) < len(descriptions)
    assert trimmed == " ".join(kept)  # whole descriptions, in their original order
    # Spread over the list: something from the middle is kept too.
    assert any(descriptions.index(d) in range(4, 8) for d in kept)


def test_trim_descriptions_shortens_a_single_overlong_description() -> None:
    long = "word " * 100

    trimmed = trim_descriptions([long.strip()], 40)

    assert len(trimmed) <= 40
    assert trimmed.endswith("…")
    assert trimmed.startswith("word word")


# --- merge_extractions ------------------------------------------------------------------------


def mention(name: str, kind: str, description: str, unit: str) -> EntityMention:
    return EntityMention(name, kind, description, unit)


def relation(source: str, target: str, strength: float, unit: str) -> RelationshipMention:
    return RelationshipMention(source, target, f"{source} with {target} in {unit}.", strength, unit)


UNIT_ORDER = {"u1": 0, "u2": 1, "u3": 2}


def hand_built_extractions() -> list[UnitExtraction]:
    """Three units' extractions, given out of corpus order (u3, u1, u2)."""
    return [
        UnitExtraction(
            "u3",
            entities=(
                mention("MELANIE", "concept", "Melanie in u3.", "u3"),
                mention("pottery classes", "event", "Classes in u3.", "u3"),
            ),
            relationships=(relation("Pottery Class", "melanie's", 2.5, "u3"),),
        ),
        UnitExtraction(
            "u1",
            entities=(
                mention("Melanie", "person", "Melanie in u1.", "u1"),
                mention("the pottery class", "event", "Class in u1.", "u1"),
                mention("Caroline", "person", "Caroline in u1.", "u1"),
            ),
            relationships=(
                relation("Melanie", "the pottery class", 1.0, "u1"),
                relation("Melanie", "Caroline", 1.0, "u1"),
                relation("Melanie", "Nobody Known", 4.0, "u1"),  # unknown endpoint: dropped
                relation("Melanie", "MELANIE", 1.0, "u1"),  # a self-loop: dropped
            ),
        ),
        UnitExtraction(
            "u2",
            entities=(
                mention("Melanie's", "person", "Melanie in u2.", "u2"),
                mention("Melanie", "person", "Melanie in u2.", "u2"),  # same text: kept once
            ),
        ),
        UnitExtraction("u4-failed", error="the teacher's answer was not JSON"),
    ]


def test_merge_by_normalized_name_with_most_frequent_spelling_and_type() -> None:
    merged = merge_extractions(hand_built_extractions(), UNIT_ORDER)

    by_title = {e.title: e for e in merged.entities}
    assert sorted(by_title) == ["Caroline", "Melanie", "the pottery class"]
    melanie = by_title["Melanie"]
    assert melanie.id == entity_id("melanie")
    assert melanie.type == "person"  # 3 person mentions against 1 concept
    assert melanie.text_unit_ids == ("u1", "u2", "u3")  # corpus order, not input order
    assert melanie.frequency == 3
    assert melanie.description == "Melanie in u1. Melanie in u2. Melanie in u3."
    pottery = by_title["the pottery class"]  # spellings tie 1:1: the first in corpus order
    assert pottery.type == "event"
    assert pottery.text_unit_ids == ("u1", "u3")


def test_merge_weighs_types_by_confidence() -> None:
    extractions = [
        UnitExtraction("u1", entities=(EntityMention("Porto", "person", "Guess 1.", "u1", 0.3),)),
        UnitExtraction("u2", entities=(EntityMention("Porto", "person", "Guess 2.", "u2", 0.3),)),
        UnitExtraction("u3", entities=(EntityMention("Porto", "geo", "Moved to Porto.", "u3"),)),
    ]

    [porto] = merge_extractions(extractions, UNIT_ORDER).entities

    assert porto.type == "geo"  # one sure mention outweighs two guesses
    assert porto.frequency == 3


def test_merge_sums_weights_and_counts_dropped_relationships() -> None:
    merged = merge_extractions(hand_built_extractions(), UNIT_ORDER)

    assert merged.dropped_relationships == 2
    assert merged.summarized == 0
    pairs = {frozenset((r.source, r.target)): r for r in merged.relationships}
    assert set(pairs) == {
        frozenset(("Melanie", "the pottery class")),
        frozenset(("Melanie", "Caroline")),
    }
    pottery = pairs[frozenset(("Melanie", "the pottery class"))]
    assert pottery.weight == pytest.approx(3.5)  # 1.0 in u1 + 2.5 in u3, either direction
    assert pottery.text_unit_ids == ("u1", "u3")
    assert (pottery.source, pottery.target) == ("Melanie", "the pottery class")  # first seen
    assert pottery.description.index("in u1.") < pottery.description.index("in u3.")
    degrees = {e.title: e.degree for e in merged.entities}
    assert degrees == {"Melanie": 2, "the pottery class": 1, "Caroline": 1}
    assert pottery.combined_degree == 3


def test_merge_is_independent_of_input_order() -> None:
    extractions = hand_built_extractions()

    forward = merge_extractions(extractions, UNIT_ORDER)
    backward = merge_extractions(extractions[::-1], UNIT_ORDER)

    assert forward == backward


def test_merge_trims_long_descriptions_to_the_budget() -> None:
    extractions = [
        UnitExtraction(
            f"u{n}", entities=(mention("Melanie", "person", f"Melanie, part {n}. " * 5, f"u{n}"),)
        )
        for n in range(20)
    ]

    merged = merge_extractions(
        extractions, {f"u{n}": n for n in range(20)}, max_description_chars=200
    )

    [melanie] = merged.entities
    assert len(melanie.description) <= 200
    assert "part 0." in melanie.description and "part 19." in melanie.description


# --- detect_communities -----------------------------------------------------------------------


def build_graph(
    groups: Sequence[Sequence[str]],
    bridges: Sequence[tuple[str, str, float]],
    isolated: Sequence[str] = "",
) -> tuple[list[Entity], list[Relationship]]:
    """Cliques of named entities (weight 5 inside; a string is a group of one-letter names),
    joined by `bridges`, and `isolated` entities with no relationship."""
    names = [name for group in groups for name in group] + list(isolated)
    entities = [Entity(f"ent-{n}", n, "person", f"{n} is here.", (f"u-{n}",)) for n in names]
    relationships = [
        Relationship(f"rel-{a}{b}", a, b, f"{a} knows {b}.", 5.0, (f"u-{a}",))
        for group in groups
        for a, b in itertools.combinations(group, 2)
    ] + [Relationship(f"rel-{a}{b}", a, b, f"{a} met {b}.", w, (f"u-{a}",)) for a, b, w in bridges]
    return entities, relationships


def members(community: Community) -> set[str]:
    return {entity.removeprefix("ent-") for entity in community.entity_ids}


def test_two_cliques_joined_by_one_edge_are_two_level0_communities() -> None:
    entities, relationships = build_graph(["ABCD", "EFGH"], [("D", "E", 1.0)], isolated="Z")

    communities = detect_communities(entities, relationships, period="2024-05-01")

    assert [members(c) for c in communities] == [set("ABCD"), set("EFGH")]
    assert [c.community for c in communities] == [0, 1]
    assert all(c.level == 0 and c.parent == -1 and c.children == () for c in communities)
    assert all(c.size == 4 and c.title == f"Community {c.community}" for c in communities)
    assert all(c.period == "2024-05-01" for c in communities)
    # Relationships with both ends inside; the bridge D–E belongs to neither.
    assert set(communities[0].relationship_ids) == {
        f"rel-{a}{b}" for a, b in itertools.combinations("ABCD", 2)
    }
    assert "rel-DE" not in communities[0].relationship_ids + communities[1].relationship_ids
    assert communities[0].text_unit_ids == ("u-A", "u-B", "u-C", "u-D")


def test_isolated_entities_belong_to_no_community() -> None:
    entities, relationships = build_graph(["ABCD", "EFGH"], [("D", "E", 1.0)], isolated="XYZ")

    communities = detect_communities(entities, relationships)

    assert not {"X", "Y", "Z"} & set().union(*(members(c) for c in communities))


def test_no_relationships_no_communities() -> None:
    entities, _ = build_graph([], [], isolated="XYZ")

    assert detect_communities(entities, []) == []


def test_communities_are_the_same_twice() -> None:
    entities, relationships = build_graph(["ABCD", "EFGH"], [("D", "E", 1.0)])

    first = detect_communities(entities, relationships, period="p")
    second = detect_communities(entities, relationships, period="p")

    assert first == second


#: Two groups of two triangles each; the triangles of a group are tied by three heavy edges,
#: the groups by one light edge, so Leiden finds the groups first, then the triangles.
NESTED_GROUPS = ["ABC", "DEF", "GHI", "JKL"]
NESTED_BRIDGES = [
    ("C", "D", 4.0),
    ("A", "F", 4.0),
    ("B", "E", 4.0),
    ("I", "J", 4.0),
    ("G", "L", 4.0),
    ("H", "K", 4.0),
    ("F", "G", 0.5),
]


def test_nested_groups_stay_one_level_when_small_enough() -> None:
    entities, relationships = build_graph(NESTED_GROUPS, NESTED_BRIDGES)

    communities = detect_communities(entities, relationships, max_cluster_size=10)

    assert [members(c) for c in communities] == [set("ABCDEF"), set("GHIJKL")]
    assert {c.level for c in communities} == {0}


def test_max_cluster_size_splits_into_level1_children_with_parents() -> None:
    entities, relationships = build_graph(NESTED_GROUPS, NESTED_BRIDGES)

    communities = detect_communities(entities, relationships, max_cluster_size=4)

    by_number = {c.community: c for c in communities}
    assert len(by_number) == len(communities)  # numbers are unique across levels
    level0 = [c for c in communities if c.level == 0]
    level1 = [c for c in communities if c.level == 1]
    assert [members(c) for c in level0] == [set("ABCDEF"), set("GHIJKL")]
    assert [members(c) for c in level1] == [set(group) for group in NESTED_GROUPS]
    assert all(c.parent == -1 for c in level0)
    for child in level1:
        parent = by_number[child.parent]
        assert parent.level == 0
        assert child.community in parent.children
        assert members(child) <= members(parent)
    assert [len(c.children) for c in level0] == [2, 2]
    # Numbered level by level: parents before children.
    assert max(c.community for c in level0) < min(c.community for c in level1)


# --- extractive_report ------------------------------------------------------------------------


def test_extractive_report_fields() -> None:
    groups = [["Alice", "Bruno", "Carla", "Diego"], ["Elena", "Filipe", "Gil", "Hugo"]]
    entities, relationships = build_graph(groups, [("Diego", "Elena", 1.0)])
    # Alice–Bruno is the heaviest tie.
    relationships = [
        replace(r, weight=9.0) if r.id == "rel-AliceBruno" else r for r in relationships
    ]
    entities, relationships = with_degrees(entities, relationships)
    communities = detect_communities(entities, relationships, period="2024-05-01")
    unit_texts = {
        "u-Alice": "Alice and Bruno went sailing with Carla on Sunday. Alice stayed home alone.",
        "u-Elena": "Nobody else is named in this long enough sentence.",
    }

    contexts = community_contexts(communities, entities, relationships)
    reports = [extractive_report(context, unit_texts) for context in contexts]

    assert len(reports) == len(communities) == 2
    first, second = reports
    community = communities[0]
    assert members(community) == {"Alice", "Bruno", "Carla", "Diego"}
    assert first.id.startswith("rep-")
    assert (first.community, first.level, first.parent, first.children) == (
        community.community,
        community.level,
        community.parent,
        community.children,
    )
    assert (first.size, first.period, first.generated_by) == (4, "2024-05-01", "extractive")
    # Titled by the three most connected members: Diego (the bridge, degree 4), then by name.
    assert first.title == "Diego, Alice and Bruno"
    assert first.summary.startswith("A community of 4 entities and 6 relationships centred on ")
    assert "Diego (person, 4 relationships)" in first.summary
    assert "Alice – Bruno (weight 9)" in first.summary  # the strongest tie first
    assert [f.summary for f in first.findings[:4]] == [
        "About Diego",
        "About Alice",
        "About Bruno",
        "Alice and Bruno",
    ]
    assert first.findings[0].explanation == "Diego is here."
    assert first.full_content.startswith(f"# {first.title}\n\n{first.summary}")
    assert "## About Diego\n\nDiego is here." in first.full_content
    assert (
        "## Representative passages\n\n> Alice and Bruno went sailing with Carla on Sunday."
        in first.full_content
    )
    assert "Representative passages" not in second.full_content  # no sentence names two members
    assert 0 <= second.rank <= first.rank == 10  # the heavier community of the level ranks 10
    assert first.rating_explanation.startswith("Rank 10 of 10")
    content = json.loads(first.full_content_json)
    assert content["title"] == first.title
    assert content["summary"] == first.summary
    assert content["rating"] == first.rank
    assert content["rating_explanation"] == first.rating_explanation
    assert [f["summary"] for f in content["findings"]] == [f.summary for f in first.findings]
    assert content["passages"] == ["Alice and Bruno went sailing with Carla on Sunday."]


# --- tables -----------------------------------------------------------------------------------

ENTITY_COLUMNS = [
    "id",
    "human_readable_id",
    "title",
    "type",
    "description",
    "text_unit_ids",
    "frequency",
    "degree",
]
RELATIONSHIP_COLUMNS = [
    "id",
    "human_readable_id",
    "source",
    "target",
    "description",
    "weight",
    "combined_degree",
    "text_unit_ids",
]
COMMUNITY_COLUMNS = [
    "id",
    "human_readable_id",
    "community",
    "level",
    "parent",
    "children",
    "title",
    "entity_ids",
    "relationship_ids",
    "text_unit_ids",
    "period",
    "size",
]
REPORT_COLUMNS = [
    "id",
    "human_readable_id",
    "community",
    "level",
    "parent",
    "children",
    "title",
    "summary",
    "full_content",
    "rank",
    "rating_explanation",
    "findings",
    "full_content_json",
    "period",
    "size",
    "generated_by",  # ragtune's addition to GraphRAG's columns
]


@pytest.fixture
def small_index() -> MemoryIndex:
    entities, relationships = build_graph(NESTED_GROUPS, NESTED_BRIDGES, isolated="Z")
    communities = detect_communities(
        entities, relationships, max_cluster_size=4, period="2024-05-01"
    )
    contexts = community_contexts(communities, entities, relationships)
    reports = [
        extractive_report(context, {"u-A": "A met B and C at noon."}) for context in contexts
    ]
    return MemoryIndex(entities, relationships, communities, reports)


def test_tables_round_trip(tmp_path: Path, small_index: MemoryIndex) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)

    write_index(workspace, small_index)

    assert read_index(workspace) == small_index


def test_tables_have_graphrag_columns_in_order(tmp_path: Path, small_index: MemoryIndex) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)

    write_index(workspace, small_index)

    assert pq.read_schema(workspace.entities_path).names == ENTITY_COLUMNS
    assert pq.read_schema(workspace.relationships_path).names == RELATIONSHIP_COLUMNS
    assert pq.read_schema(workspace.communities_path).names == COMMUNITY_COLUMNS
    assert pq.read_schema(workspace.community_reports_path).names == REPORT_COLUMNS


def test_human_readable_ids(tmp_path: Path, small_index: MemoryIndex) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)

    write_index(workspace, small_index)

    def column(path: Path, name: str) -> list[object]:
        return list(pq.read_table(path, columns=[name]).column(name).to_pylist())

    # Row numbers for entities and relationships; the community number for the others.
    assert column(workspace.entities_path, "human_readable_id") == list(
        range(len(small_index.entities))
    )
    assert column(workspace.relationships_path, "human_readable_id") == list(
        range(len(small_index.relationships))
    )
    numbers = [c.community for c in small_index.communities]
    assert column(workspace.communities_path, "human_readable_id") == numbers
    assert column(workspace.community_reports_path, "human_readable_id") == numbers


def test_empty_index_round_trips(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)

    write_index(workspace, MemoryIndex())

    assert read_index(workspace) == MemoryIndex()
    assert pq.read_schema(workspace.entities_path).names == ENTITY_COLUMNS
