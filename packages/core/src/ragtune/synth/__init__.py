"""Training-data synthesis following RAG principles: questions about the memory answered from
the right retrieved context (entity and relationship templates and chain-of-thought, text
units, global map-reduce over community reports, temporal, unanswerable and recall QA),
grounded, deduplicated and split into TRL conversational prompt-completion files."""

from __future__ import annotations

from ragtune.synth.card import DatasetCard
from ragtune.synth.records import KINDS, QARecord
from ragtune.synth.settings import DEFAULT_STRATEGIES, STRATEGY_NAMES, SynthConfig

__all__ = [
    "DEFAULT_STRATEGIES",
    "KINDS",
    "STRATEGY_NAMES",
    "DatasetCard",
    "QARecord",
    "SynthConfig",
]
