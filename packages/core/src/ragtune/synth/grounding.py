"""The grounding filter: an answer is kept only if its sources support what it says.

Support is lexical: the share of the answer's content words (stop words dropped, Porter-stemmed,
numbers kept) that occur in the record's sources — its text units, or the context the strategy
answered from. An answer below `synth.min_support` is dropped and counted; answers with no
sources (abstentions) are not checked here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ragtune.synth.records import QARecord
from ragtune.text.lexicon import word_list
from ragtune.text.terms import content_terms

# Words that frame an answer rather than state a fact ("Based on the memory, therefore ...").
_FRAMING = frozenset(
    word_list(
        """answer answers based according memory memories context information mentioned mention
    mentions therefore thus hence overall summary conclusion final reasoning step steps appears
    indicates suggests shows shown stated states says said source sources text passage"""
    )
)


def content_stems(text: str) -> set[str]:
    """The stems of the content words of `text` (numbers included), framing words aside."""
    return set(content_terms(text, skip=_FRAMING))


def support(answer: str, source_text: str) -> float:
    """The share of `answer`'s content words found in `source_text` (1.0 if it has none)."""
    wanted = content_stems(answer)
    if not wanted:
        return 1.0
    return len(wanted & content_stems(source_text)) / len(wanted)


class GroundingFilter:
    """Keeps records whose answers their sources support.

    Args:
        unit_texts: Text of every unit, by id.
        min_support: The least support an answer needs.
    """

    def __init__(self, unit_texts: Mapping[str, str], min_support: float) -> None:
        self.unit_texts = unit_texts
        self.min_support = min_support
        self._unit_stems: dict[str, set[str]] = {}

    def score(self, record: QARecord) -> float | None:
        """The support of `record`'s answer, or None if it has no sources to check against."""
        if not record.source_ids and record.support is None:
            return None
        wanted = content_stems(record.answer)
        if not wanted:
            return 1.0
        found: set[str] = set()
        for unit_id in record.source_ids:
            found |= wanted & self._stems_of(unit_id)
        if record.support is not None:
            found |= wanted & content_stems(record.support)
        return len(found) / len(wanted)

    def _stems_of(self, unit_id: str) -> set[str]:
        if unit_id not in self._unit_stems:
            self._unit_stems[unit_id] = content_stems(self.unit_texts.get(unit_id, ""))
        return self._unit_stems[unit_id]

    def keeps(self, record: QARecord) -> bool:
        """Whether `record` is grounded enough to keep."""
        score = self.score(record)
        return score is None or score >= self.min_support
