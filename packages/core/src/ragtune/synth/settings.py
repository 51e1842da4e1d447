"""The `synth.*` settings of `memory.yaml`: the synthesis stage and each strategy's own section,
and what the synthesis stage reads of the whole configuration (`SynthInputs`).

Plain dataclasses, so `ragtune.config` can hold them without importing the strategies; each
strategy class names its section in `settings_name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ragtune.errors import ConfigError
from ragtune.llm.specs import teacher_writes
from ragtune.ranges import FRACTION, SEED, SHARE, Range, check_ranges, counts

#: Every built-in strategy, in the order they run (recall runs last: it reuses their questions).
STRATEGY_NAMES = (
    "entity_templates",
    "relationship_templates",
    "cot",
    "text_units",
    "global_qa",
    "temporal",
    "unanswerable",
    "profiles",
    "recall",
)

#: The strategies a memory runs unless `synth.strategies` says otherwise: the recipe that
#: measured best on LoCoMo's dev conversations (docs/experiments.md). The others are there to
#: be chosen: `recall` for the retrievers, `unanswerable` to abstain, the templates, `cot` and
#: `global_qa` for questions about the whole memory.
DEFAULT_STRATEGIES = ("text_units", "temporal")

#: What the tuned model says when the memory does not hold the answer. It contains "not
#: mentioned", which LoCoMo's scorer counts as the right answer to an adversarial question.
DEFAULT_ABSTENTION = (
    "That is not mentioned in my memory, so I don't know; I have no information about it."
)

_TYPED = ["person", "organization", "geo", "event", "object"]


@dataclass
class EntityTemplateSettings:
    """Entity template QA: templated questions about an entity, answered with its description."""

    per_entity: int = field(
        default=3, metadata={"help": "Question templates (paraphrases) used per entity."}
    )
    types: list[str] = field(
        default_factory=lambda: list(_TYPED),
        metadata={"help": "Entity types asked about (salient phrases are type concept)."},
    )
    min_frequency: int = field(
        default=1, metadata={"help": "Text units that must mention an entity for it to be asked."}
    )


@dataclass
class RelationshipTemplateSettings:
    """Relationship template QA: "What is the relationship between A and B?" and variants."""

    per_relationship: int = field(
        default=2, metadata={"help": "Question templates (paraphrases) used per relationship."}
    )
    min_weight: float = field(
        default=2.0,
        metadata={
            "help": "Relationships this strong are asked about whatever their endpoints' types."
        },
    )
    types: list[str] = field(
        default_factory=lambda: list(_TYPED),
        metadata={"help": "Relationships between two entities of these types are always asked."},
    )


@dataclass
class CotSettings:
    """Entity and relationship chain-of-thought QA, written by the teacher."""

    max_entities: int = field(
        default=100, metadata={"help": "Entities asked about, the most connected first."}
    )
    max_relationships: int = field(
        default=100, metadata={"help": "Relationships asked about, the strongest first."}
    )
    max_units: int = field(
        default=30, metadata={"help": "Source text units shown to the teacher per item."}
    )
    max_context_chars: int = field(
        default=12000, metadata={"help": "Longest context (description and units) per request."}
    )
    types: list[str] = field(
        default_factory=lambda: list(_TYPED),
        metadata={"help": "Entity types asked about."},
    )


@dataclass
class TextUnitSettings:
    """Text-unit QA: specific factual questions whose answers are spans of one unit."""

    per_unit: int = field(
        default=100,
        metadata={
            "help": "Facts asked about per text unit, at most (100: every fact the patterns find"
            " in a unit of the default size)."
        },
    )
    paraphrases: int = field(
        default=2, metadata={"help": "Phrasings of each fact's question (1 = no paraphrase)."}
    )
    mentions: Literal["quote", "clause"] = field(
        default="clause",
        metadata={
            "help": 'What "What did X say about Y?" is answered with: the sentence quoted'
            " (quote) or the clause naming Y, in the third person (clause)."
        },
    )


@dataclass
class GlobalSettings:
    """Global QA: whole-memory questions answered map-reduce from community reports."""

    per_community: int = field(
        default=2, metadata={"help": "Questions (paraphrases) per community."}
    )
    max_communities: int = field(
        default=200, metadata={"help": "Communities asked about, the highest ranked first."}
    )
    max_reports: int = field(
        default=8, metadata={"help": "Reports the reduce step reads per question."}
    )
    max_points: int = field(
        default=6, metadata={"help": "Key points an answer keeps after the reduce step."}
    )
    timelines: int = field(
        default=10, metadata={"help": "People whose change over time is asked about."}
    )


@dataclass
class TemporalSettings:
    """Temporal QA: when dated events happened, and which came first."""

    paraphrases: int = field(
        default=2, metadata={"help": 'Phrasings of each "when" question (1 = no paraphrase).'}
    )
    orderings: int = field(
        default=200, metadata={"help": '"Did X happen before Y?" questions at most.'}
    )
    told_days: bool = field(
        default=True,
        metadata={
            "help": 'Also ask "When did ...?" about events a dated sentence tells without a time'
            " expression, answered with the day it was told (how LoCoMo dates them)."
        },
    )


@dataclass
class UnanswerableSettings:
    """Unanswerable QA: plausible questions the memory cannot answer, answered by abstaining."""

    share: float = field(
        default=0.1,
        metadata={"help": "Unanswerable records per answerable local record (0.1 = one in ten)."},
    )
    abstention: str = field(
        default=DEFAULT_ABSTENTION,
        metadata={"help": "The sentence every answer to an unanswerable question ends with."},
    )
    kinds: list[str] = field(
        default_factory=lambda: ["swapped", "absent"],
        metadata={
            "help": "Which unanswerable questions: swapped (a fact one speaker stated, asked of"
            " the other) and absent (about people the memory never mentions)."
        },
    )
    explain: bool = field(
        default=True,
        metadata={
            "help": "Say why before abstaining (nobody by that name; whom the fact is about), "
            "so that abstaining is not one fixed answer a tuned model falls back on."
        },
    )


@dataclass
class ProfileSettings:
    """Profiles: each person's facts restated as dated sentences, shuffled, several a record."""

    copies: int = field(
        default=3,
        metadata={"help": "Profiles (each shuffled differently) that restate every fact."},
    )
    per_record: int = field(default=6, metadata={"help": "Statements per profile record."})


@dataclass
class RecallSettings:
    """Recall QA: a question answered with the verbatim text of the unit that answers it."""

    per_unit: int = field(default=2, metadata={"help": "Recall questions per text unit."})
    passage: Literal["unit", "turns"] = field(
        default="unit",
        metadata={
            "help": "What is recalled: the whole unit, or the answering turns (with one turn "
            "either side) — verbatim either way."
        },
    )


@dataclass
class SynthConfig:
    """How training data is synthesized from the index."""

    strategies: list[str] = field(
        default_factory=lambda: list(DEFAULT_STRATEGIES),
        metadata={"help": "The strategies that run, of: " + ", ".join(STRATEGY_NAMES) + "."},
    )
    writer: Literal["auto", "llm", "heuristic"] = field(
        default="auto",
        metadata={
            "help": "Who writes questions where a strategy can use the teacher: llm or "
            "heuristic (templates and spans); auto is heuristic when the teacher is embedded."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of every random choice."})
    val_fraction: float = field(
        default=0.1, metadata={"help": "Share of facts (or source units) held out for validation."}
    )
    split: Literal["paraphrase", "source"] = field(
        default="paraphrase",
        metadata={
            "help": "paraphrase: validation holds unseen phrasings of facts trained on; source: "
            "validation holds whole source units that training never sees."
        },
    )
    min_support: float = field(
        default=0.6,
        metadata={"help": "Share of an answer's content words its sources must contain."},
    )
    dedup_threshold: float = field(
        default=0.85,
        metadata={"help": "Questions this similar (MinHash Jaccard) to a kept one are dropped."},
    )
    max_tokens: int = field(default=768, metadata={"help": "Most tokens of one teacher answer."})
    batch_size: int = field(default=16, metadata={"help": "Teacher requests sent together."})
    entity_templates: EntityTemplateSettings = field(default_factory=EntityTemplateSettings)
    relationship_templates: RelationshipTemplateSettings = field(
        default_factory=RelationshipTemplateSettings
    )
    cot: CotSettings = field(default_factory=CotSettings)
    text_units: TextUnitSettings = field(default_factory=TextUnitSettings)
    global_qa: GlobalSettings = field(default_factory=GlobalSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    unanswerable: UnanswerableSettings = field(default_factory=UnanswerableSettings)
    profiles: ProfileSettings = field(default_factory=ProfileSettings)
    recall: RecallSettings = field(default_factory=RecallSettings)

    def writer_for(self, teacher: str) -> Literal["llm", "heuristic"]:
        """Who `writer` names, with auto resolved from the `teacher` spec."""
        return teacher_writes(teacher) if self.writer == "auto" else self.writer

    def check(self) -> None:
        """Check the values' ranges.

        Raises:
            ConfigError: a value is out of range or a strategy is unknown.
        """
        if not self.strategies:
            raise ConfigError(
                f"synth.strategies must name at least one of {', '.join(STRATEGY_NAMES)}"
            )
        unknown = [name for name in self.strategies if name not in STRATEGY_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown synth strategies {', '.join(unknown)} "
                f"(known: {', '.join(STRATEGY_NAMES)})"
            )
        if not self.unanswerable.abstention.strip():
            raise ConfigError("synth.unanswerable.abstention must not be empty")
        kinds = self.unanswerable.kinds
        if not kinds or any(kind not in ("swapped", "absent") for kind in kinds):
            raise ConfigError(
                f"synth.unanswerable.kinds must name swapped, absent or both, not {kinds}"
            )
        check_ranges(self, SYNTH_RANGES, "synth.")


#: The range of each numeric `synth.*` setting.
SYNTH_RANGES = {
    "seed": SEED,
    "val_fraction": FRACTION,
    "min_support": SHARE,
    "dedup_threshold": SHARE,
    "max_tokens": counts(1, 1_048_576),
    "batch_size": counts(1, 65_536),
    "entity_templates.per_entity": counts(),
    "entity_templates.min_frequency": counts(0),
    "relationship_templates.per_relationship": counts(),
    "relationship_templates.min_weight": Range(0, 1_000_000),
    "cot.max_entities": counts(0),
    "cot.max_relationships": counts(0),
    "cot.max_units": counts(),
    "cot.max_context_chars": counts(),
    "text_units.per_unit": counts(0),
    "text_units.paraphrases": counts(),
    "global_qa.per_community": counts(),
    "global_qa.max_communities": counts(0),
    "global_qa.max_reports": counts(),
    "global_qa.max_points": counts(),
    "global_qa.timelines": counts(0),
    "temporal.paraphrases": counts(),
    "temporal.orderings": counts(0),
    "unanswerable.share": SHARE,
    "profiles.copies": counts(0),
    "profiles.per_record": counts(),
    "recall.per_unit": counts(0),
}


class SynthInputs(Protocol):
    """The settings `synthesize` reads: `synth.*`, the teacher's spec and the tuned model's
    (whose tokenizer counts tokens); a `ragtune.config.MemoryConfig` is one."""

    @property
    def teacher(self) -> str:
        """The teacher's model spec."""
        ...

    @property
    def model(self) -> str:
        """The tuned model's spec."""
        ...

    @property
    def synth(self) -> SynthConfig:
        """The `synth.*` settings."""
        ...

    def validate(self) -> None:
        """Check every value (raises `ConfigError`)."""
        ...
