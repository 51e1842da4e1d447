"""The offline heuristic extractor: entities and relationships without any language model.

Entities come from four sources: the speakers of a conversation; capitalized names (runs of
capitalized words, "Dr. Helena Sousa", "Forno Azul"); salient noun phrases (runs of content
words between stop words, as in RAKE, "LGBTQ support group"); and dated events (the main
phrase of a sentence with a time expression, dated against the document's timestamp).
Relationships join entities mentioned in the same sentence (weighted by how often) and a
speaker with what they mention. Descriptions are the sentences themselves, so every claim in
the index is a quotation of the memory. It is deterministic and needs no model.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragtune.corpus.types import TextUnit
from ragtune.hashing import canonical_json, content_hash
from ragtune.index.types import EntityMention, RelationshipMention, UnitExtraction
from ragtune.progress import progress_bar
from ragtune.text.dates import resolve_time, time_expressions
from ragtune.text.lexicon import (
    NAME_CONNECTORS,
    NOT_NAMES,
    PERSON_TITLES,
    STOPWORDS,
    TYPE_KEYWORDS,
)
from ragtune.text.names import normalize_name
from ragtune.text.sentences import unit_sentences

_VERSION = "3"
_TOKEN = re.compile(r"[^\W\d_](?:[\w'’-]*\w)?|\d+")
_PLACE_AFTER = frozenset(["in", "near", "visited", "visiting", "across", "around"])
_MOTION_VERBS = frozenset(
    [
        "went",
        "go",
        "going",
        "moved",
        "move",
        "moving",
        "trip",
        "travel",
        "traveled",
        "travelled",
        "flew",
        "drove",
        "back",
        "visit",
        "road",
        "headed",
        "heading",
    ]
)
_ORIGIN_VERBS = frozenset(["am", "i'm", "im", "is", "are", "was", "come", "comes", "came", "moved"])
_SENTENCES_PER_DESCRIPTION = 3
_GUESS = 0.3  # the weight of a type guessed without evidence
_QUOTES = frozenset("\"“”'‘’")


@dataclass
class _Sentence:
    """One sentence of a unit, with who said it."""

    text: str
    speaker: str | None
    lead: str  # "Caroline said on 8 May 2023: " — how a description quotes it
    written: str | None  # the document's timestamp, which relative dates count from


@dataclass
class _Found:
    """An entity found in one unit."""

    title: str
    types: dict[str, float] = field(default_factory=dict)
    sentences: list[int] = field(default_factory=list)


class HeuristicExtractor:
    """Extracts entities and relationships with rules (see the module docstring).

    Args:
        entity_types: Types to keep; mentions of other types are dropped (``concept`` is the
            fallback type of phrases and unknown names).
        max_phrases: Salient noun phrases kept per unit, besides names and dated events.
    """

    kind = "heuristic"

    def __init__(self, entity_types: Sequence[str], *, max_phrases: int = 8) -> None:
        self.entity_types = tuple(entity_types)
        self.max_phrases = max_phrases

    @property
    def fingerprint(self) -> str:
        """Identifies the rules and settings, so saved extractions are reused only with them."""
        settings = {"types": self.entity_types, "phrases": self.max_phrases, "v": _VERSION}
        return "heuristic:" + content_hash(canonical_json(settings))

    def extract(self, units: Sequence[TextUnit], *, progress: bool = False) -> list[UnitExtraction]:
        """The entities and relationships of each unit, in order."""
        bar = progress_bar(units, desc="extracting", unit="unit", enabled=progress)
        return [self.extract_unit(unit) for unit in bar]

    def extract_unit(self, unit: TextUnit) -> UnitExtraction:
        """The entities and relationships of one unit."""
        sentences = _sentences(unit)
        found: dict[str, _Found] = {}
        mentions: list[list[str]] = [[] for _ in sentences]

        def add(title: str, kind: str, index: int) -> None:
            key = normalize_name(title)
            if not key or key in STOPWORDS:
                return
            entry = found.setdefault(key, _Found(title))
            weight = _GUESS if kind.endswith("?") else 1.0
            kind = kind.rstrip("?")
            entry.types[kind] = entry.types.get(kind, 0.0) + weight
            if index >= 0 and index not in entry.sentences:
                entry.sentences.append(index)
                mentions[index].append(key)

        for speaker in unit.speakers:
            add(speaker, "person", -1)
        capitalized_inside = _capitalized_inside(sentences)
        phrase_counts: Counter[str] = Counter()
        phrases_by_sentence: list[list[str]] = []
        for index, sentence in enumerate(sentences):
            for title, kind in _names(sentence.text, capitalized_inside, unit.speakers):
                add(title, kind, index)
            phrases = _phrases(sentence.text)
            phrases_by_sentence.append(phrases)
            phrase_counts.update(normalize_name(p) for p in phrases)
        salient = _salient(phrase_counts, self.max_phrases)
        for index, phrases in enumerate(phrases_by_sentence):
            dated = bool(time_expressions(sentences[index].text))
            main = _main_phrase(phrases) if dated else None
            for phrase in phrases:
                if phrase == main:
                    add(phrase, "event", index)
                elif normalize_name(phrase) in salient:
                    add(phrase, _phrase_type(phrase), index)
        for index, sentence in enumerate(sentences):
            if sentence.speaker:
                add(sentence.speaker, "person", -1)
                key = normalize_name(sentence.speaker)
                if key in found and index not in found[key].sentences:
                    found[key].sentences.append(index)
        return self._result(unit, sentences, found, mentions)

    def _result(
        self,
        unit: TextUnit,
        sentences: list[_Sentence],
        found: dict[str, _Found],
        mentions: list[list[str]],
    ) -> UnitExtraction:
        kept = {}
        for key, entry in found.items():
            kind = _best_type(entry.types)
            if kind not in self.entity_types:
                kind = "concept" if "concept" in self.entity_types else ""
            if kind:
                kept[key] = (entry, kind)
        entities = tuple(
            EntityMention(
                name=entry.title,
                type=kind,
                description=_describe(sentences, _chosen(entry, found, sentences)),
                text_unit_id=unit.id,
                confidence=min(1.0, entry.types.get(kind, _GUESS)),
            )
            for key, (entry, kind) in kept.items()
            if entry.sentences
        )
        return UnitExtraction(
            text_unit_id=unit.id,
            entities=entities,
            relationships=_relationships(unit, sentences, mentions, kept),
        )


def _sentences(unit: TextUnit) -> list[_Sentence]:
    date = resolve_time(unit.timestamp[:10], None) if unit.timestamp else None
    result = []
    for sentence in unit_sentences(unit):
        speaker = sentence.speaker
        if speaker and date:
            lead = f"{speaker} said on {date}: "
        elif speaker:
            lead = f"{speaker}: "
        else:
            lead = f"On {date}: " if date else ""
        result.append(_Sentence(sentence.text, speaker, lead, unit.timestamp))
    return result


def _capitalized_inside(sentences: list[_Sentence]) -> set[str]:
    """Words written capitalized somewhere other than at a sentence start: likely names."""
    words = set()
    for sentence in sentences:
        for token in _TOKEN.findall(sentence.text)[1:]:
            if token[0].isupper():
                words.add(token)
    return words


def _names(
    text: str, capitalized_inside: set[str], speakers: Sequence[str]
) -> list[tuple[str, str]]:
    """The capitalized names in one sentence, each with a type guess."""
    tokens = list(_TOKEN.finditer(text))
    names: list[tuple[str, str]] = []
    run: list[re.Match[str]] = []

    def close(end: int) -> None:
        while run and (run[-1].group(0).lower() in NAME_CONNECTORS):
            run.pop()
        if run:
            names.extend(_name(text, tokens, run, end, capitalized_inside, speakers))
        run.clear()

    for position, token in enumerate(tokens):
        word = token.group(0)
        joined = bool(run) and text[run[-1].end() : token.start()].strip() == ""
        letters = re.sub(r"['’-]", "", word)
        if word[0].isupper() and word.lower() not in NOT_NAMES and letters.isalpha():
            if run and not joined:
                close(position)
            run.append(token)
        elif run and joined and word.lower() in NAME_CONNECTORS:
            run.append(token)
        else:
            close(position)
    close(len(tokens))
    return names


def _name(
    text: str,
    tokens: list[re.Match[str]],
    run: list[re.Match[str]],
    end: int,
    capitalized_inside: set[str],
    speakers: Sequence[str],
) -> list[tuple[str, str]]:
    start = tokens.index(run[0])
    words = [t.group(0) for t in run]
    person = False
    while words and words[0].lower().rstrip(".") in PERSON_TITLES:
        words, start, person = words[1:], start + 1, True
    if start > 0 and tokens[start - 1].group(0).lower() in PERSON_TITLES:
        person = True
    # At a sentence start, a capital says nothing: drop leading ordinary words ("Thanks
    # Melanie") and keep a lone word only if it is capitalized elsewhere too.
    while words and start == 0 and words[0].lower() in STOPWORDS:
        words, start = words[1:], start + 1
    if not words:
        return []
    if (
        len(words) == 1
        and start == 0
        and words[0] not in capitalized_inside
        and words[0] not in speakers
    ):
        return []
    words[-1] = re.sub(r"['’]s?$", "", words[-1])
    if len(words) == 1 and (words[0].lower() in STOPWORDS or len(words[0]) < 2):
        return []
    title = " ".join(words)
    if end < len(tokens) and words[0].isupper() and len(words) == 1:
        following = tokens[end].group(0)
        if following.islower() and following not in STOPWORDS:
            return []  # an acronym modifying a phrase ("LGBTQ support group"): the phrase wins
    first = tokens[start].start()
    last = run[-1].end()
    quoted = text[first - 1 : first] in _QUOTES and text[last : last + 1] in _QUOTES
    after = tokens[end].group(0).lower() if end < len(tokens) else ""
    kind = _name_type(words, tokens, start, person, speakers, quoted=quoted, after=after)
    return [(title, kind)]


def _name_type(
    words: list[str],
    tokens: list[re.Match[str]],
    start: int,
    person: bool,
    speakers: Sequence[str],
    *,
    quoted: bool,
    after: str,
) -> str:
    if person or " ".join(words) in speakers:
        return "person"
    if quoted:
        return "object"  # a quoted title: a book, a song, a film
    for word in reversed(words):
        keyword = TYPE_KEYWORDS.get(word.lower())
        if keyword:
            return keyword
    before = [t.group(0).lower() for t in tokens[:start] if t.group(0).lower() != "the"]
    previous = before[-1] if before else ""
    earlier = before[-2] if len(before) > 1 else ""
    if (
        previous in _PLACE_AFTER
        or (previous == "to" and (earlier in _MOTION_VERBS or "from" in before[-5:-1]))
        or (previous == "from" and (earlier in _ORIGIN_VERBS or after == "to"))
    ):
        return "geo"
    if len(words) == 1 and words[0].isupper():
        return "concept?"
    return "person?" if len(words) <= 3 else "concept?"  # a guess, weighed less


def _phrases(text: str) -> list[str]:
    """Runs of one to four content words (RAKE's candidates), an acronym allowed first."""
    phrases: list[str] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        words = [t.group(0) for t in run][-4:]
        while words and _verb_like(words[-1]):
            words.pop()
        while words and _verb_like(words[0]):
            words.pop(0)
        if words and (len(words) > 1 or len(words[0]) >= 4):
            phrases.append(" ".join(words))
        run.clear()

    for token in _TOKEN.finditer(text):
        word = token.group(0)
        joined = bool(run) and text[run[-1].end() : token.start()] in (" ", "-")
        acronym = word.isupper() and len(word) >= 2 and word.isalpha()
        content = word.islower() and word.isalpha() and len(word) >= 3 and word not in STOPWORDS
        if content and run and joined:
            run.append(token)
        elif content or (acronym and word.lower() not in NOT_NAMES):
            close()
            run.append(token)
        else:
            close()
    close()
    return [p for p in phrases if not (p.isupper() and " " not in p)]


def _verb_like(word: str) -> bool:
    """Whether a lowercase word looks like a past-tense verb ("planted", "cooked")."""
    return len(word) >= 5 and word.endswith("ed") and not word.endswith("eed")


def _salient(counts: Counter[str], limit: int) -> set[str]:
    """The phrases worth an entity: multi-word ones and repeated single words, best first."""

    def score(item: tuple[str, int]) -> tuple[int, int]:
        phrase, count = item
        return (count * len(phrase.split()), len(phrase))

    candidates = [
        item for item in counts.items() if " " in item[0] or (item[1] >= 2 and len(item[0]) >= 5)
    ]
    return {phrase for phrase, _ in sorted(candidates, key=score, reverse=True)[:limit]}


def _main_phrase(phrases: list[str]) -> str | None:
    """The phrase a dated sentence is about: the longest, the last of equals."""
    if not phrases:
        return None
    longest = max(len(p.split()) for p in phrases)
    return [p for p in phrases if len(p.split()) == longest][-1]


def _phrase_type(phrase: str) -> str:
    return TYPE_KEYWORDS.get(phrase.split()[-1].lower(), "concept")


def _best_type(types: dict[str, float]) -> str:
    # The heaviest; ties go to the more specific type (person > geo > org > event > ...).
    order = ["person", "geo", "organization", "event", "object", "concept"]
    return max(types, key=lambda t: (types[t], -order.index(t) if t in order else -99))


def _chosen(entry: _Found, found: dict[str, _Found], sentences: list[_Sentence]) -> list[int]:
    """The sentences that describe an entity best: those richest in other things than people
    (so a speaker is described by what they talk about, not by greetings), in text order."""
    if len(entry.sentences) <= _SENTENCES_PER_DESCRIPTION:
        return entry.sentences
    things = [other for other in found.values() if _best_type(other.types) != "person"]
    richness = {
        i: (
            sum(i in other.sentences for other in things if other is not entry),
            len(sentences[i].text),
        )
        for i in entry.sentences
    }
    best = sorted(entry.sentences, key=lambda i: (-richness[i][0], -richness[i][1], i))
    return sorted(best[:_SENTENCES_PER_DESCRIPTION])


def _describe(sentences: list[_Sentence], indices: list[int]) -> str:
    return " ".join(_quote(sentences[i]) for i in indices)


def _quote(sentence: _Sentence) -> str:
    dated = []
    for expression in time_expressions(sentence.text):
        resolved = resolve_time(expression, sentence.written)
        if resolved is None or resolved.lower() == expression.lower():
            continue
        dated.append(f"{expression} = {resolved}")
    suffix = f" ({'; '.join(dated)})" if dated else ""
    return f"{sentence.lead}{sentence.text}{suffix}"


def _relationships(
    unit: TextUnit,
    sentences: list[_Sentence],
    mentions: list[list[str]],
    kept: dict[str, tuple[_Found, str]],
) -> tuple[RelationshipMention, ...]:
    counts: Counter[tuple[str, str]] = Counter()
    evidence: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, keys in enumerate(mentions):
        present = [k for k in dict.fromkeys(keys) if k in kept]
        speaker = sentences[index].speaker
        speaker_key = normalize_name(speaker) if speaker else None
        pairs = {_pair(a, b) for n, a in enumerate(present) for b in present[n + 1 :]}
        if speaker_key in kept:
            pairs |= {_pair(speaker_key, k) for k in present if k != speaker_key}
        for pair in sorted(pairs):
            counts[pair] += 1
            if len(evidence[pair]) < 2:
                evidence[pair].append(index)
    return tuple(
        RelationshipMention(
            source=kept[a][0].title,
            target=kept[b][0].title,
            description=_describe(sentences, evidence[(a, b)]),
            strength=float(count),
            text_unit_id=unit.id,
        )
        for (a, b), count in counts.items()
    )


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)
