"""The built-in synthesis strategies, by name (their `--strategies` and `synth.<name>` name).

A custom strategy subclasses `Strategy` and is passed to `synthesize(..., strategies=[...])`.
"""

from __future__ import annotations

from ragtune.synth.settings import STRATEGY_NAMES, SynthConfig
from ragtune.synth.strategies.base import Generated, Strategy
from ragtune.synth.strategies.cot import ChainOfThoughtQA
from ragtune.synth.strategies.global_qa import GlobalQA
from ragtune.synth.strategies.profiles import ProfileQA
from ragtune.synth.strategies.recall import RecallQA
from ragtune.synth.strategies.templates import EntityTemplateQA, RelationshipTemplateQA
from ragtune.synth.strategies.temporal import TemporalQA
from ragtune.synth.strategies.text_units import TextUnitQA
from ragtune.synth.strategies.unanswerable import UnanswerableQA

#: Every built-in strategy class, by name, in the order they run.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        EntityTemplateQA,
        RelationshipTemplateQA,
        ChainOfThoughtQA,
        TextUnitQA,
        GlobalQA,
        TemporalQA,
        UnanswerableQA,
        ProfileQA,
        RecallQA,
    )
}
assert tuple(STRATEGIES) == STRATEGY_NAMES


def configured_strategies(config: SynthConfig) -> list[Strategy]:
    """The strategies `config.strategies` names, each with its settings section, in the
    built-in order."""
    chosen = set(config.strategies)
    return [cls(getattr(config, name)) for name, cls in STRATEGIES.items() if name in chosen]


__all__ = [
    "STRATEGIES",
    "ChainOfThoughtQA",
    "EntityTemplateQA",
    "Generated",
    "GlobalQA",
    "ProfileQA",
    "RecallQA",
    "RelationshipTemplateQA",
    "Strategy",
    "TemporalQA",
    "TextUnitQA",
    "UnanswerableQA",
    "configured_strategies",
]
