"""Merging: per-unit mentions → one entity per normalized name, one relationship per pair.

Mentions merge when their names normalize alike (`normalize_name`). A merged entity takes the
most frequent spelling and type; its descriptions are combined by a `DescriptionSummarizer`
(the teacher) when one is given, else trimmed extractively. Every entity and relationship keeps
the ids of the units it came from, in corpus order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from ragtune.hashing import content_hash
from ragtune.index.types import Entity, Relationship, UnitExtraction
from ragtune.text.names import normalize_name
from ragtune.text.shorten import shorten


@dataclass(frozen=True)
class DescriptionItem:
    """Descriptions of one entity or relationship, to combine into one."""

    kind: str  # "entity" or "relationship"
    name: str
    descriptions: tuple[str, ...]


class DescriptionSummarizer(Protocol):
    """Combines several descriptions of one thing into one (a teacher model)."""

    def summarize(self, items: Sequence[DescriptionItem]) -> list[str | None]:
        """One combined description per item, or None where it could not combine them."""
        ...


@dataclass(frozen=True)
class MergeResult:
    """Merged entities and relationships, with what was dropped."""

    entities: list[Entity]
    relationships: list[Relationship]
    dropped_relationships: int
    summarized: int


def merge_extractions(
    extractions: Sequence[UnitExtraction],
    unit_order: Mapping[str, int],
    *,
    max_description_chars: int = 800,
    summarizer: DescriptionSummarizer | None = None,
) -> MergeResult:
    """Merge the mentions of `extractions` into entities and relationships.

    Args:
        extractions: Per-unit extractions (failed ones contribute nothing).
        unit_order: Each unit's position in the corpus, to order unit ids and descriptions.
        max_description_chars: Longest description kept when trimming extractively.
        summarizer: Combines descriptions with a model; extractive trimming if None.
    """
    ordered = sorted(extractions, key=lambda e: unit_order.get(e.text_unit_id, len(unit_order)))
    names: dict[str, Counter[str]] = defaultdict(Counter)
    types: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    entity_texts: dict[str, list[str]] = defaultdict(list)
    entity_units: dict[str, list[str]] = defaultdict(list)
    for extraction in ordered:
        for mention in extraction.entities:
            key = normalize_name(mention.name)
            if not key:
                continue
            names[key][mention.name.strip()] += 1
            types[key][mention.type] += mention.confidence
            _add_unique(entity_texts[key], mention.description.strip())
            _add_unique(entity_units[key], extraction.text_unit_id)
    titles = {key: _most_common(counter) for key, counter in names.items()}

    pair_texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    pair_units: dict[tuple[str, str], list[str]] = defaultdict(list)
    pair_weight: dict[tuple[str, str], float] = defaultdict(float)
    pair_direction: dict[tuple[str, str], tuple[str, str]] = {}
    dropped = 0
    for extraction in ordered:
        for relation in extraction.relationships:
            source, target = normalize_name(relation.source), normalize_name(relation.target)
            if source not in titles or target not in titles or source == target:
                dropped += 1
                continue
            pair = (min(source, target), max(source, target))
            pair_direction.setdefault(pair, (source, target))
            pair_weight[pair] += relation.strength
            _add_unique(pair_texts[pair], relation.description.strip())
            _add_unique(pair_units[pair], extraction.text_unit_id)

    combined, summarized = _combine(
        [DescriptionItem("entity", titles[k], tuple(entity_texts[k])) for k in titles]
        + [
            DescriptionItem(
                "relationship",
                f"{titles[pair_direction[p][0]]} and {titles[pair_direction[p][1]]}",
                tuple(pair_texts[p]),
            )
            for p in pair_direction
        ],
        max_description_chars,
        summarizer,
    )
    entity_descriptions = combined[: len(titles)]
    pair_descriptions = combined[len(titles) :]
    entities = [
        Entity(
            id=entity_id(key),
            title=titles[key],
            type=_most_common(types[key]),
            description=description,
            text_unit_ids=tuple(entity_units[key]),
            frequency=len(entity_units[key]),
        )
        for key, description in zip(titles, entity_descriptions, strict=True)
    ]
    relationships = [
        Relationship(
            id=relationship_id(*pair),
            source=titles[pair_direction[pair][0]],
            target=titles[pair_direction[pair][1]],
            description=description,
            weight=pair_weight[pair],
            text_unit_ids=tuple(pair_units[pair]),
        )
        for pair, description in zip(pair_direction, pair_descriptions, strict=True)
    ]
    entities, relationships = with_degrees(entities, relationships)
    return MergeResult(entities, relationships, dropped, summarized)


def entity_id(key: str) -> str:
    """The stable id of the entity with normalized name `key`."""
    return "ent-" + content_hash(key)


def relationship_id(a: str, b: str) -> str:
    """The stable id of the relationship between the entities with normalized names a, b."""
    return "rel-" + content_hash(*sorted((a, b)))


def with_degrees(
    entities: list[Entity], relationships: list[Relationship]
) -> tuple[list[Entity], list[Relationship]]:
    """`entities` and `relationships` with `degree` and `combined_degree` recomputed."""
    degree: Counter[str] = Counter()
    for relationship in relationships:
        degree[relationship.source] += 1
        degree[relationship.target] += 1
    return (
        [replace(e, degree=degree[e.title]) for e in entities],
        [replace(r, combined_degree=degree[r.source] + degree[r.target]) for r in relationships],
    )


def trim_descriptions(descriptions: Sequence[str], max_chars: int) -> str:
    """Descriptions joined into one of at most `max_chars` characters, extractively.

    When they do not all fit, the kept ones are spread over the whole list (first, last,
    middle, ...) so the result spans the memory's whole timeline, and stay in their order.
    """
    if not descriptions:
        return ""
    joined = " ".join(descriptions)
    if len(joined) <= max_chars:
        return joined
    chosen: list[int] = []
    used = -1
    for index in _spread(len(descriptions)):
        cost = len(descriptions[index]) + 1
        if used + cost <= max_chars:
            chosen.append(index)
            used += cost
    if not chosen:
        return shorten(descriptions[0], max_chars)
    return " ".join(descriptions[i] for i in sorted(chosen))


def _combine(
    items: list[DescriptionItem], max_chars: int, summarizer: DescriptionSummarizer | None
) -> tuple[list[str], int]:
    results = [trim_descriptions(item.descriptions, max_chars) for item in items]
    if summarizer is None:
        return results, 0
    several = [n for n, item in enumerate(items) if len(item.descriptions) > 1]
    summaries = summarizer.summarize([items[n] for n in several])
    done = 0
    for n, summary in zip(several, summaries, strict=True):
        if summary and summary.strip():
            results[n] = summary.strip()
            done += 1
    return results, done


def _spread(count: int) -> list[int]:
    """0, count-1, then midpoints of ever smaller gaps: an order that covers the range evenly."""
    order = [0] if count == 1 else [0, count - 1]
    seen = set(order)
    gaps = [(0, count - 1)]
    while gaps:
        next_gaps = []
        for low, high in gaps:
            if high - low < 2:
                continue
            middle = (low + high) // 2
            if middle not in seen:
                seen.add(middle)
                order.append(middle)
            next_gaps += [(low, middle), (middle, high)]
        gaps = next_gaps
    return order


def _add_unique(items: list[str], item: str) -> None:
    if item and item not in items:
        items.append(item)


def _most_common(counter: Mapping[str, float]) -> str:
    # Dicts keep insertion order, and max keeps the first of equals: ties go to the first seen.
    return max(counter, key=lambda k: counter[k])
