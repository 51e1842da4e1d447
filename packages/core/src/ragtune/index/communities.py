"""The memory graph and its hierarchical Leiden communities, levelled as GraphRAG levels them.

The graph is a networkx graph of entities (nodes) and relationships (weighted edges). Its
communities come from `graspologic_native.hierarchical_leiden`, the implementation GraphRAG
uses: Leiden over the whole graph gives level 0; any community larger than `max_cluster_size`
is clustered again into communities one level deeper, until none is. A community's number is
unique across levels; a level-0 community's parent is -1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ragtune.hashing import content_hash
from ragtune.index.types import Community, Entity, Relationship

if TYPE_CHECKING:
    import networkx as nx


def build_graph(entities: Sequence[Entity], relationships: Sequence[Relationship]) -> nx.Graph:
    """The memory graph: one node per entity (by id, with its title and type), one weighted
    edge per relationship (by id)."""
    import networkx as nx

    by_title = {entity.title: entity.id for entity in entities}
    graph = nx.Graph()
    for entity in entities:
        graph.add_node(entity.id, title=entity.title, type=entity.type)
    for relationship in relationships:
        source, target = by_title[relationship.source], by_title[relationship.target]
        if graph.has_edge(source, target):
            graph[source][target]["weight"] += relationship.weight
        else:
            graph.add_edge(source, target, weight=relationship.weight, id=relationship.id)
    return graph


def detect_communities(
    entities: Sequence[Entity],
    relationships: Sequence[Relationship],
    *,
    max_cluster_size: int = 10,
    seed: int = 0xDEADBEEF,
    period: str = "",
) -> list[Community]:
    """Hierarchical Leiden communities of the memory graph.

    Entities without relationships belong to no community (as in GraphRAG). Communities are
    numbered level by level, in the order of their first entity, so numbers are stable for a
    given graph and seed.

    Args:
        entities: The graph's nodes.
        relationships: The graph's edges (source and target are entity titles).
        max_cluster_size: Communities larger than this are split one level deeper.
        seed: Seeds Leiden, so the same graph always gives the same communities.
        period: The date to record as each community's `period`.
    """
    from graspologic_native import hierarchical_leiden

    graph = build_graph(entities, relationships)
    position = {entity.id: n for n, entity in enumerate(entities)}
    edges = sorted(
        (min(a, b, key=position.__getitem__), max(a, b, key=position.__getitem__), data["weight"])
        for a, b, data in graph.edges(data=True)
        if a != b
    )
    if not edges:
        return []
    edges.sort(key=lambda edge: (position[edge[0]], position[edge[1]]))
    clusters = hierarchical_leiden(
        [(a, b, float(w)) for a, b, w in edges],
        max_cluster_size=max_cluster_size,
        seed=seed,
    )
    members: dict[int, list[str]] = defaultdict(list)
    level_of: dict[int, int] = {}
    parent_of: dict[int, int] = {}
    for item in clusters:
        members[item.cluster].append(item.node)
        level_of[item.cluster] = item.level
        parent_of[item.cluster] = -1 if item.parent_cluster is None else item.parent_cluster
    for nodes in members.values():
        nodes.sort(key=position.__getitem__)
    order = sorted(members, key=lambda c: (level_of[c], position[members[c][0]]))
    number = {cluster: n for n, cluster in enumerate(order)}
    children: dict[int, list[int]] = defaultdict(list)
    for cluster in order:
        if parent_of[cluster] != -1:
            children[number[parent_of[cluster]]].append(number[cluster])
    return [
        _community(
            number[cluster],
            level_of[cluster],
            number.get(parent_of[cluster], -1),
            children[number[cluster]],
            members[cluster],
            graph,
            {entity.id: entity for entity in entities},
            position,
            period,
        )
        for cluster in order
    ]


def _community(
    number: int,
    level: int,
    parent: int,
    children: list[int],
    member_ids: list[str],
    graph: nx.Graph,
    entities: dict[str, Entity],
    unit_rank: dict[str, int],
    period: str,
) -> Community:
    inside = set(member_ids)
    relationship_ids = sorted(
        {data["id"] for a, b, data in graph.subgraph(inside).edges(data=True)}
    )
    units: dict[str, None] = {}
    for entity_id in member_ids:
        units.update(dict.fromkeys(entities[entity_id].text_unit_ids))
    return Community(
        id="com-" + content_hash(str(level), *member_ids),
        community=number,
        level=level,
        parent=parent,
        children=tuple(children),
        title=f"Community {number}",
        entity_ids=tuple(member_ids),
        relationship_ids=tuple(relationship_ids),
        text_unit_ids=tuple(units),
        period=period,
        size=len(member_ids),
    )
