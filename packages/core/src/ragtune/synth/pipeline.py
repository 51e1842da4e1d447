"""The synthesis stage: the memory index → `synth/train.jsonl`, `synth/val.jsonl`, `card.json`.

Strategies run in order, each seeing the records kept before it; every candidate passes the
grounding filter, then deduplication against everything kept so far; the kept records are split
and written atomically. Teacher calls go through the workspace's response cache, so a re-run (or
a run killed part-way) repeats no call, and the same index and settings give the same files.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.errors import ModelNotAvailableError, RagtuneError
from ragtune.extras import require_extra
from ragtune.fileio import atomic_path, atomic_write_text, json_lines
from ragtune.index.tables import read_index
from ragtune.llm.types import ChatBackend
from ragtune.progress import progress_bar
from ragtune.prompts import recalled_question
from ragtune.stages import runs_as_stage
from ragtune.synth.card import DatasetCard, count_by
from ragtune.synth.context import SynthContext
from ragtune.synth.dedup import Deduplicator
from ragtune.synth.grounding import GroundingFilter
from ragtune.synth.increments import (
    merge,
    read_earlier,
    read_lines,
    settings_fingerprint,
    write_state,
)
from ragtune.synth.records import QARecord
from ragtune.synth.settings import SynthInputs
from ragtune.synth.split import split_records
from ragtune.synth.strategies import Strategy, configured_strategies
from ragtune.workspace import Workspace

log = logging.getLogger("ragtune")


@runs_as_stage("synthesize")
def synthesize(
    workspace: Workspace,
    config: SynthInputs,
    *,
    teacher: ChatBackend | None = None,
    strategies: Sequence[Strategy] | None = None,
    progress: bool = True,
) -> DatasetCard:
    """Synthesize the training data of `workspace` from its index and write `synth/`.

    Args:
        workspace: A workspace with an index (`ragtune index` ran).
        config: The settings (`synth.*`, `teacher`, `model` for token counts).
        teacher: The teacher; loaded from `config.teacher` (with the workspace's response
            cache) when `synth.writer` resolves to llm and none is given.
        strategies: The strategies to run; default those `synth.strategies` names.
        progress: Whether to show progress bars.

    Returns:
        The dataset card (also written to `synth/card.json`).

    Raises:
        RagtuneError: the workspace has no index.
        ModelNotAvailableError: the teacher cannot be loaded.
        MissingExtraError: the ``train`` extra is not installed.
    """
    require_extra("train", "lemminflect", needed_for="ragtune synthesize")
    started = time.perf_counter()
    config.validate()
    settings = config.synth
    if not workspace.entities_path.is_file():
        raise RagtuneError("has no index; run `ragtune index` first", path=workspace.root)
    units = read_text_units(workspace.text_units_path)
    documents = read_documents(workspace.documents_path)
    index = read_index(workspace)
    writer = settings.writer_for(config.teacher)
    if teacher is None and writer == "llm":
        from ragtune.llm.specs import load_backend

        teacher = load_backend(config.teacher, cache=workspace.llm_cache_path)
    calls_before = teacher.stats.model_calls if teacher else 0
    usage_before = teacher.stats.usage if teacher else None
    hits_before = int(getattr(teacher, "hits", 0))

    context = SynthContext(units, documents, index, settings, teacher=teacher, writer=writer)
    grounding = GroundingFilter(
        {unit.id: _grounding_text(context, unit.id) for unit in units}, settings.min_support
    )
    chosen = list(strategies) if strategies is not None else configured_strategies(settings)
    card = DatasetCard(writer=context.writer)
    dropped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    deduplicator = Deduplicator(settings.dedup_threshold)
    kept: list[QARecord] = []
    for strategy in progress_bar(chosen, desc="synthesizing", unit="strategy", enabled=progress):
        if strategy.needs_teacher and context.writer != "llm":
            card.skipped[strategy.name] = (
                "needs a teacher: set synth.writer=llm, or a teacher other than embedded"
            )
            continue
        began = time.perf_counter()
        generated = strategy.generate(context, kept, progress=progress)
        for (reason, kind), count in generated.dropped.items():
            dropped[reason][kind] += count
        for record in generated.records:
            if not grounding.keeps(record):
                dropped["ungrounded"][record.kind] += 1
            elif not deduplicator.add(*_dedup_key(record)):
                dropped["duplicate question"][record.kind] += 1
            else:
                kept.append(record)
        card.strategies[strategy.name] = {
            "candidates": len(generated.records),
            "seconds": round(time.perf_counter() - began, 3),
        }

    split = split_records(
        kept, mode=settings.split, val_fraction=settings.val_fraction, seed=settings.seed
    )
    for record in split.straddling:
        dropped["source units on both sides of the split"][record.kind] += 1
    fingerprint = settings_fingerprint(
        settings, context.writer, teacher.model_name if teacher is not None else None
    )
    earlier = read_earlier(
        workspace.synth_state_path, workspace.train_path, workspace.val_path, read_lines
    )
    if earlier is not None and earlier.fingerprint != fingerprint:
        log.info("the synthesis settings changed: every record is written anew")
        card.changes["settings_changed"] = 1
        earlier_count = len(earlier.train) + len(earlier.val)
        earlier = None
    else:
        earlier_count = 0
    unit_ids = frozenset(unit.id for unit in units)
    changes = merge(earlier, split.train, split.val, unit_ids, _line, _dedup_key)
    changes.retired += earlier_count
    _write_lines(workspace.train_path, [text for text, _ in changes.train])
    _write_lines(workspace.val_path, [text for text, _ in changes.val])
    write_state(workspace.synth_state_path, fingerprint, sorted(unit_ids))
    train = [record for _, record in changes.train]
    val = [record for _, record in changes.val]

    card.changes.update(changes.to_json())
    card.train, card.val = len(train), len(val)
    card.kinds = count_by(train, val, "kind")
    card.scopes = count_by(train, val, "query_scope")
    card.facts = len({r.fact_id for r in [*train, *val]})
    card.tokens = _token_counts(config, [*train, *val])
    card.dropped = {reason: dict(sorted(kinds.items())) for reason, kinds in dropped.items()}
    card.split = {
        "mode": settings.split,
        "val_fraction": settings.val_fraction,
        "seed": settings.seed,
    }
    covered = {unit_id for r in train for unit_id in r.source_ids}
    card.units = {"total": len(units), "sources_of_training_records": len(covered)}
    if teacher is not None:
        usage = teacher.stats.usage
        card.teacher = {
            "model": teacher.model_name,
            "calls": teacher.stats.model_calls - calls_before,
            "cache_hits": int(getattr(teacher, "hits", 0)) - hits_before,
            "prompt_tokens": usage.prompt_tokens
            - (usage_before.prompt_tokens if usage_before else 0),
            "completion_tokens": usage.completion_tokens
            - (usage_before.completion_tokens if usage_before else 0),
        }
    card.seconds = round(time.perf_counter() - started, 3)
    text = json.dumps(card.to_json(), indent=2, ensure_ascii=False)
    atomic_write_text(workspace.card_path, text + "\n")
    return card


def read_records(path: Path) -> list[QARecord]:
    """The records of a `train.jsonl` or `val.jsonl` file.

    Raises:
        RagtuneError: a line is not JSON or not a training record.
    """
    with path.open(encoding="utf-8") as lines:
        return [
            QARecord.from_json(value, where=f"{path}, line {number}")
            for number, value in json_lines(path, lines)
        ]


def _dedup_key(record: QARecord) -> tuple[str, str]:
    """What deduplication compares: recall questions by the question they wrap, profiles
    (whose few questions repeat by design) by what they restate."""
    wrapped = recalled_question(record.question) if record.kind == "recall" else None
    if wrapped is not None:
        return wrapped, "recall"
    if record.kind == "profile":
        return record.answer, "profile"
    return record.question, ""


def _grounding_text(context: SynthContext, unit_id: str) -> str:
    """A unit's text with its date, which answers may cite."""
    unit = context.unit_by_id[unit_id]
    day = context.day(unit)
    return f"{day}\n{unit.text}" if day else unit.text


def _line(record: QARecord) -> str:
    return json.dumps(record.to_json(), ensure_ascii=False)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")


def _token_counts(config: SynthInputs, records: Sequence[QARecord]) -> dict[str, Any]:
    """Prompt and completion tokens, counted with the tuned model's tokenizer (or in words,
    noted as such, when that tokenizer is not available locally)."""
    questions = [r.question for r in records]
    answers = [r.answer for r in records]
    try:
        from ragtune.llm.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(config.model)
        prompt = sum(tokenizer.count_tokens(questions)) if records else 0
        completion = sum(tokenizer.count_tokens(answers)) if records else 0
        counted_in = "tokens"
    except ModelNotAvailableError as error:
        log.warning("counting words instead of tokens: %s", error)
        prompt = sum(len(q.split()) for q in questions)
        completion = sum(len(a.split()) for a in answers)
        counted_in = "words"
    return {
        "prompt": prompt,
        "completion": completion,
        "total": prompt + completion,
        "counted_in": counted_in,
    }
