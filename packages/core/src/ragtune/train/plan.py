"""What a training run trains on: every record of `synth/train.jsonl` (a run from the base model),
or, for `ragtune train --update`, the records the parent version was not trained on plus a seeded
`train.replay` share of those it was — with what the new version's weights will have seen
(`ragtune.adapters.Trained`) and what the run adds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragtune.adapters import AdapterVersion, AdapterVersions, Trained, record_hash
from ragtune.corpus.tables import read_text_units
from ragtune.errors import RagtuneError
from ragtune.hashing import content_hash
from ragtune.train.settings import TrainInputs
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class Plan:
    """What a training run trains on: the records (JSON lines as in `synth/train.jsonl`), which
    of them are new to the weights, and the version it continues (None: the base model)."""

    lines: list[str]
    new: int
    replayed: int
    trained: Trained
    parent: AdapterVersion | None = None


def _records(workspace: Workspace) -> list[tuple[str, dict[str, Any]]]:
    """`synth/train.jsonl`'s records, each with its line."""
    from ragtune.fileio import json_lines

    path = workspace.train_path
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(lines[number - 1], record) for number, record in json_lines(path, lines)]


def _units_of(records: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(str(unit) for record in records for unit in record.get("source_ids", ()))


def full_plan(workspace: Workspace) -> Plan:
    records = _records(workspace)
    trained = Trained(
        frozenset(record_hash(record) for _, record in records),
        _units_of([record for _, record in records]),
    )
    return Plan([line for line, _ in records], len(records), 0, trained)


def update_plan(workspace: Workspace, config: TrainInputs, parent: int | None) -> Plan:
    """The records an update trains on: those version `parent` (default: the current one) was
    not trained on, and a `train.replay` share of those it was (chosen by a seeded hash)."""
    settings = config.train
    versions = AdapterVersions(workspace, settings.adapter)
    # (the current version once a switch a killed run cut short is finished, as `_train` will)
    number = parent if parent is not None else versions.intended()
    if number is None:
        raise RagtuneError(
            f"has no adapter {settings.adapter!r} to update; run `ragtune train` first",
            path=workspace.root,
        )
    version = versions.get(number)
    seen = Trained.read(version.folder)
    if seen is None:
        raise RagtuneError(
            f"adapter {settings.adapter!r} v{number} was trained before ragtune recorded what "
            "each version learned, so an update cannot tell new records from old; run "
            "`ragtune train` once without --update",
            path=version.folder,
        )
    records = _records(workspace)
    hashes = [record_hash(record) for _, record in records]
    new = [n for n, digest in enumerate(hashes) if digest not in seen.records]
    old = [n for n, digest in enumerate(hashes) if digest in seen.records]
    if not new:
        raise RagtuneError(
            f"nothing new to train: adapter {settings.adapter!r} v{number} was trained on every "
            "record of synth/train.jsonl; add documents and run `ragtune index` and "
            "`ragtune synthesize` first",
            path=workspace.train_path,
        )
    ranked = sorted(old, key=lambda n: content_hash(str(settings.seed), hashes[n]))
    replayed = ranked[: round(settings.replay * len(old))]
    chosen = {*new, *replayed}
    lines = [line for n, (line, _) in enumerate(records) if n in chosen]
    trained = Trained(
        seen.records | {hashes[n] for n in new},
        seen.units | _units_of([records[n][1] for n in new]),
    )
    return Plan(lines, len(new), len(replayed), trained, version)


def added_by(workspace: Workspace, plan: Plan) -> dict[str, Any]:
    """What a run adds to the weights: records, replayed records, new units and their
    documents."""
    before = Trained.read(plan.parent.folder) if plan.parent else None
    units = sorted(plan.trained.units - (before.units if before else frozenset()))
    documents = {}
    if workspace.text_units_path.is_file():
        documents = {u.id: u.document_id for u in read_text_units(workspace.text_units_path)}
    return {
        "records": plan.new,
        "replayed": plan.replayed,
        "units": len(units),
        "documents": sorted({documents[u] for u in units if u in documents}),
    }
