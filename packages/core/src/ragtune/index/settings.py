"""The `index.*` settings of `memory.yaml`, and what the index stage reads of the whole
configuration (`IndexInputs`, which `ragtune.config.MemoryConfig` has)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ragtune.errors import ConfigError
from ragtune.index.types import DEFAULT_ENTITY_TYPES
from ragtune.llm.specs import teacher_writes
from ragtune.ranges import SEED, check_ranges, counts


@dataclass
class IndexConfig:
    """How the memory index (entities, relationships, communities, reports) is built."""

    extractor: Literal["auto", "llm", "heuristic"] = field(
        default="auto",
        metadata={
            "help": "Who extracts entities and relationships: llm (the teacher) or heuristic "
            "(no model); auto is heuristic when the teacher is embedded, else llm."
        },
    )
    entity_types: list[str] = field(
        default_factory=lambda: list(DEFAULT_ENTITY_TYPES),
        metadata={"help": "The entity types extraction asks for."},
    )
    gleanings: int = field(
        default=1,
        metadata={"help": "Extra LLM passes per text unit asking for what was missed."},
    )
    summaries: Literal["auto", "llm", "extractive"] = field(
        default="auto",
        metadata={
            "help": "How merged descriptions are combined: by the teacher (llm) or by keeping "
            "sentences (extractive); auto follows the extractor."
        },
    )
    reports: Literal["auto", "llm", "extractive"] = field(
        default="auto",
        metadata={
            "help": "Who writes community reports: the teacher (llm) or extractive; auto "
            "follows the extractor."
        },
    )
    max_description_chars: int = field(
        default=800, metadata={"help": "Longest merged description kept, in characters."}
    )
    max_cluster_size: int = field(
        default=10,
        metadata={"help": "Communities larger than this are split into a deeper level."},
    )
    seed: int = field(default=0xDEADBEEF, metadata={"help": "Seed of the Leiden clustering."})
    batch_size: int = field(
        default=16,
        metadata={"help": "Text units extracted together (and saved together, for resuming)."},
    )
    max_tokens: int = field(
        default=1024, metadata={"help": "Most tokens of one LLM extraction answer."}
    )

    def extractor_for(self, teacher: str) -> Literal["llm", "heuristic"]:
        """The extractor `extractor` names, with auto resolved from the `teacher` spec."""
        return teacher_writes(teacher) if self.extractor == "auto" else self.extractor

    def step_for(
        self, setting: Literal["auto", "llm", "extractive"], teacher: str
    ) -> Literal["llm", "extractive"]:
        """`setting` (`summaries` or `reports`), with auto resolved from the extractor."""
        if setting != "auto":
            return setting
        return "llm" if self.extractor_for(teacher) == "llm" else "extractive"

    def check(self) -> None:
        """Check the values' ranges.

        Raises:
            ConfigError: a value is out of range.
        """
        if not self.entity_types or any(not t.strip() for t in self.entity_types):
            raise ConfigError("index.entity_types must be a list of non-empty type names")
        check_ranges(self, INDEX_RANGES, "index.")


#: The range of each numeric `index.*` setting.
INDEX_RANGES = {
    "gleanings": counts(0, 100),
    "max_description_chars": counts(),
    "max_cluster_size": counts(),
    "seed": SEED,
    "batch_size": counts(1, 65_536),
    "max_tokens": counts(1, 1_048_576),
}


class IndexInputs(Protocol):
    """The settings `build_index` reads: `index.*` and the teacher's spec (a
    `ragtune.config.MemoryConfig` is one)."""

    @property
    def teacher(self) -> str:
        """The teacher's model spec."""
        ...

    @property
    def index(self) -> IndexConfig:
        """The `index.*` settings."""
        ...

    def validate(self) -> None:
        """Check every value (raises `ConfigError`)."""
        ...
