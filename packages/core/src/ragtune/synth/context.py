"""What every strategy reads: the text units, their sentences and dates, the index, the teacher.

Sentences are located in their conversation turn (so records can cite LoCoMo ``dia_id``s) and
dated by their document, once, and shared by the strategies.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ragtune.corpus.types import Document, TextUnit
from ragtune.hashing import content_hash
from ragtune.index.types import Entity, MemoryIndex
from ragtune.llm.types import ChatBackend
from ragtune.synth.settings import SynthConfig
from ragtune.text.dates import resolve_time, time_expressions
from ragtune.text.names import normalize_name
from ragtune.text.sentences import unit_sentences

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


@dataclass(frozen=True)
class UnitSentence:
    """One sentence of a text unit, with its speaker, turn and date.

    Attributes:
        text: The sentence.
        speaker: Who said it (conversations), else None.
        unit_id: The text unit it is in.
        turn_id: The conversation turn it is in (a LoCoMo ``dia_id``), else None.
        day: The document's date as "8 May 2023", else None.
        written: The document's timestamp (ISO 8601), which relative dates count from.
        caption: For a shared image, its caption; else None.
    """

    text: str
    speaker: str | None
    unit_id: str
    turn_id: str | None
    day: str | None
    written: str | None
    caption: str | None = None

    @cached_property
    def named_time(self) -> tuple[str, str | None] | None:
        """The sentence's first time expression and the date it resolves to ("yesterday",
        "7 May 2023"; None if it does not resolve), or None if it names no time."""
        expressions = time_expressions(self.text)
        if not expressions:
            return None
        return expressions[0], resolve_time(expressions[0], self.written)

    @property
    def when(self) -> str | None:
        """When what the sentence tells happened: the date its time expression resolves to,
        else the day it was told (None when it names a time that does not resolve, or is
        undated)."""
        return self.day if self.named_time is None else self.named_time[1]


class SynthContext:
    """The memory as the synthesis strategies see it.

    Args:
        units: The workspace's text units, in corpus order.
        documents: The documents they were cut from.
        index: The memory index.
        config: The `synth` settings.
        teacher: The teacher, when questions are teacher-written (`writer` is llm).
        writer: ``"llm"`` (the teacher writes where a strategy can use it) or ``"heuristic"``.
    """

    def __init__(
        self,
        units: Sequence[TextUnit],
        documents: Sequence[Document],
        index: MemoryIndex,
        config: SynthConfig,
        *,
        teacher: ChatBackend | None = None,
        writer: Literal["llm", "heuristic"] = "heuristic",
    ) -> None:
        self.units = list(units)
        self.documents = {document.id: document for document in documents}
        self.index = index
        self.config = config
        self.teacher = teacher
        self.writer = writer if teacher is not None else "heuristic"
        self.unit_by_id = {unit.id: unit for unit in self.units}
        self.order = {unit.id: n for n, unit in enumerate(self.units)}

    def rng(self, name: str) -> random.Random:
        """A random generator for `name` (a strategy), seeded from `synth.seed` and `name`, so
        one strategy's choices do not shift when another changes."""
        return random.Random(content_hash(str(self.config.seed), name))

    def in_order(self, unit_ids: Iterable[str]) -> tuple[str, ...]:
        """`unit_ids` without repeats or unknown ids, in corpus order."""
        known = {unit_id for unit_id in unit_ids if unit_id in self.order}
        return tuple(sorted(known, key=self.order.__getitem__))

    def day(self, unit: TextUnit) -> str | None:
        """The date `unit` was written, as "8 May 2023", or None."""
        return resolve_time(unit.timestamp[:10], None) if unit.timestamp else None

    def anchor(self, unit: TextUnit) -> str | None:
        """Where `unit` was written, to anchor a question: "In the conversation on 8 May
        2023" (a chat) or "In your note of 14 January 2024" (prose), or None if undated."""
        day = self.day(unit)
        if day is None:
            return None
        return f"In the conversation on {day}" if unit.speakers else f"In your note of {day}"

    def sentences(self, unit_id: str) -> list[UnitSentence]:
        """The sentences of the unit `unit_id`, in order."""
        return self._sentences[unit_id]

    def listener(self, unit: TextUnit, speaker: str) -> str | None:
        """Who `speaker` was talking to in `unit` (the other speaker of a two-person chat)."""
        others = [name for name in unit.speakers if name != speaker]
        return others[0] if len(others) == 1 else None

    def entities_of(self, unit_id: str) -> list[Entity]:
        """The entities that the unit `unit_id` mentions."""
        return self._entities_by_unit.get(unit_id, [])

    def entity(self, title: str) -> Entity | None:
        """The entity titled `title` (compared normalized), or None."""
        return self._entities_by_key.get(normalize_name(title))

    def text_of(self, unit_ids: Iterable[str]) -> str:
        """The text of the units `unit_ids`, joined."""
        return "\n\n".join(self.unit_by_id[u].text for u in unit_ids if u in self.unit_by_id)

    def mentions(self, phrase: str) -> bool:
        """Whether some unit contains `phrase` (its words in a row, ignoring case)."""
        words = [w.lower() for w in _WORD.findall(phrase)]
        if not words:
            return False
        pattern = re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b")
        return any(pattern.search(text) for text in self._lowered_texts)

    def people(self) -> list[str]:
        """The speakers and person entities of the memory, most mentioned first."""
        speakers = {speaker for unit in self.units for speaker in unit.speakers}
        persons = [e for e in self.index.entities if e.type == "person" or e.title in speakers]
        ranked = sorted(persons, key=lambda e: (-e.frequency, e.title))
        return [entity.title for entity in ranked]

    @cached_property
    def _lowered_texts(self) -> list[str]:
        return [unit.text.lower() for unit in self.units]

    @cached_property
    def _entities_by_unit(self) -> dict[str, list[Entity]]:
        found: dict[str, list[Entity]] = defaultdict(list)
        for entity in self.index.entities:
            for unit_id in entity.text_unit_ids:
                found[unit_id].append(entity)
        return found

    @cached_property
    def _entities_by_key(self) -> dict[str, Entity]:
        return {normalize_name(entity.title): entity for entity in self.index.entities}

    @cached_property
    def _sentences(self) -> dict[str, list[UnitSentence]]:
        return {unit.id: self._locate(unit) for unit in self.units}

    def _locate(self, unit: TextUnit) -> list[UnitSentence]:
        document = self.documents.get(unit.document_id)
        turns = document.turns if document else ()
        day = self.day(unit)
        located = []
        for sentence in unit_sentences(unit):
            offset = unit.start_char + sentence.start
            turn = next((t for t in turns if t.start <= offset < t.end), None)
            located.append(
                UnitSentence(
                    text=sentence.text,
                    # a turn cut by the unit's start lost its "Speaker:"; the document knows it
                    speaker=sentence.speaker or (turn.speaker if turn else None),
                    unit_id=unit.id,
                    turn_id=turn.id if turn else None,
                    day=day,
                    written=unit.timestamp,
                    caption=sentence.caption,
                )
            )
        return located
