"""Questions from first-person sentences, with no language model.

"I've been researching adoption agencies." said by Caroline becomes the fact *What has Caroline
been researching?* → *Adoption agencies*; "I went to a LGBTQ support group yesterday" becomes
*Where did Caroline go?* → *A LGBTQ support group*, and — with its time expression removed —
the event *go to a LGBTQ support group*, which temporal questions ask "When did ...?" about.
Verbs are lemmatized and inflected with LemmInflect's dictionary; answers are spans of the
sentence, so they are grounded by construction. Sentences that do not fit these patterns
give nothing (a missed question is better than a wrong one).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from ragtune.synth.phrasing import upper_first
from ragtune.text.dates import time_expressions
from ragtune.text.lexicon import STOPWORDS, word_list
from ragtune.text.names import normalize_name

_CLAUSE_START = r"(?:^|(?<=[\s,;:(]))"
_ADVERBS = (
    r"(?P<adverbs>(?:\s+(?:just|finally|recently|really|also|actually|even|totally|only|"
    r"definitely|already|always|often|usually|sometimes|still|never|ever|again|once|been))*)"
)
# "I", optionally followed by auxiliaries and adverbs, then the main verb.
_CLAUSE = re.compile(
    r"(?:^|(?<=[\s,;:(]))I(?P<aux>(?:'ve|’ve|'m|’m|'d|’d|\s+have|\s+am|\s+was|\s+had)?)"
    + _ADVERBS
    + r"\s+(?P<verb>[a-z]+)\b(?!['’]t\b)(?P<rest>[^.!?]*)"  # not "won't", "don't"
)
_MY_CLAUSE = re.compile(
    r"(?:^|(?<=[\s,;:(]))[Mm]y (?P<noun>(?:favou?rite |new |old |first |dream )?(?:[a-z]+ )?[a-z]+)"
    r" (?P<verb>is|was) (?P<rest>[^.!?,;]+)"
)
_BOUNDARY = re.compile(
    r"\s*(?:[,;:!?()\"“”—–]|\s-\s|\.(?:\s|$)|\b(?:and|but|because|so|which|who|that|when|while|"
    r"since|as|if|though|although|where|cause|cuz|or|until|after|before|than|lol|haha)\b)"
)
_CLAUSE_END = re.compile(
    r"\s*(?:[,;:!?()—–]|\s-\s|\.(?:\s|$)|\b(?:and|but|because|so|which|when|while|since|"
    r"though|although|cause|cuz|or|until|lol|haha)\b)",
    re.IGNORECASE,
)
# "I", "I've", "I'm really", "I have been" at the start of a clause (the answer drops them).
_LEADING_I = re.compile(
    r"^I(?:'ve|’ve|'m|’m|'d|’d|'ll|’ll|\s+have|\s+am|\s+was|\s+had|\s+will)?"
    r"(?:\s+(?:just|finally|recently|really|also|actually|even|totally|been))*\s+"
)
_PREPOSITIONS = frozenset(
    word_list("to at in into on for with about from by through around out up over near inside")
)
_CLAUSE_OPENERS = frozenset(
    word_list(
        """and but so because then when after before since cause also well now recently finally
    actually yeah yes oh wow honestly anyway plus"""
    )
)
_DEMONSTRATIVE = re.compile(r"^(?:this|that|these|those)\b", re.IGNORECASE)
_SUBJECT_PRONOUN = re.compile(r"\b(?:I|[Ww]e|[Tt]hey|[Hh]e|[Ss]he)\b(?!-)")
_PERSON_NOUNS = frozenset(
    word_list(
        """coach mentor friend boss partner husband wife son daughter teacher doctor therapist
        neighbor neighbour sister brother mom mum dad mother father roommate grandma grandpa
        grandmother grandfather aunt uncle cousin girlfriend boyfriend colleague idol hero"""
    )
)
# Verbs whose place ("to", "at", "in" ...) answers "Where?"; other verbs ask "What ... into?".
_PLACE_VERBS = frozenset(
    word_list(
        """go come move travel drive fly walk run head live stay work study visit arrive return
        hike swim camp sign meet volunteer shop eat dine sit wait stop settle relocate sail
        paddle ride perform play teach speak present compete race"""
    )
)
# Verbs whose object is a person ("Who did Melanie meet?").
_PERSON_VERBS = frozenset(
    word_list("meet call hug marry date invite help thank miss visit see adopt hire")
)
# Verbs whose destination belongs in the question ("What did Melanie take to the workshop?").
_TRANSFER_VERBS = frozenset(
    word_list("take bring send give put carry lend show sell buy make cook bake")
)
# Verbs skipped after "I" as small talk that state facts about someone named
# ("Quillon Varga keeps 37 ferrets", "Jon loves dancing").
_STATED_OF_OTHERS = frozenset(word_list("keep love like get want need"))
_NUMBER_WORDS = frozenset(
    word_list("two three four five six seven eight nine ten eleven twelve twenty dozen hundred")
)
_PARTICLES = frozenset(["up", "out", "off", "down", "back", "away"])
_PLACE_PREPOSITIONS = frozenset(["to", "at", "in", "into", "near", "inside", "around"])
# Verbs that say little on their own ("I think ...", "I feel ...") or need a clause object.
_SKIPPED_VERBS = frozenset(
    word_list(
        """be do can could will would should may might must shall think feel know guess hope wish
    mean bet believe agree understand appreciate thank say tell ask want need wonder imagine
    suppose reckon realize realise notice see hear totally gotta gonna wanna love like let get
    try keep remember forget admit swear promise bet cannot"""
    )
)
# Present-tense verbs whose object is a lasting fact ("I play the violin").
_PRESENT_VERBS = frozenset(["enjoy", "prefer", "adore", "hate", "have", "own", "play", "work"])
_PRONOUNS = {
    "my": "their",
    "mine": "theirs",
    "me": "them",
    "myself": "themselves",
    "our": "their",
    "ours": "theirs",
    "us": "them",
    "we": "they",
    "ourselves": "themselves",
    "i": "they",
}
_TO_YOU = {
    "my": "your",
    "mine": "yours",
    "me": "you",
    "myself": "yourself",
    "our": "your",
    "ours": "yours",
    "us": "you",
    "we": "you",
    "ourselves": "yourselves",
    "i": "you",
}
_SECOND_PERSON = frozenset(["you", "your", "yours", "yourself", "u", "ya"])
_MAX_OBJECT_WORDS = 8


@dataclass(frozen=True)
class Fact:
    """A question a first-person sentence answers.

    Attributes:
        question: The question, about the speaker by name; None when only `when` can be asked
            ("I'm going camping" says when, not what).
        answer: A span of the sentence (pronouns turned to the third person), capitalized.
        when: The question asking when it happened ("When did Caroline go to a LGBTQ support
            group?"), for past and progressive clauses (the caller decides whether the sentence
            dates it); None for other facts.
        happened: The event as a past-tense statement ("Caroline went to a LGBTQ support
            group"), for ordering questions; None unless the sentence is in the past tense.
        statement: The fact as a sentence about the person by name, in the sentence's own
            tense ("Caroline has been researching adoption agencies"), without a final stop;
            what profiles restate.
        about: Who the statement is about (None: the memory's owner, "you").
    """

    question: str | None
    answer: str
    when: str | None = None
    happened: str | None = None
    statement: str | None = field(default=None, compare=False)
    about: str | None = field(default=None, compare=False)


def first_person_facts(sentence: str, speaker: str | None) -> list[Fact]:
    """The facts `speaker` states about themselves in `sentence` (at most one per pattern).

    With no speaker (notes the memory's owner wrote), questions address the owner as "you".
    """
    text = _with_subject(_without_time(sentence))
    person = _Person(speaker, speaker)
    facts: list[Fact] = []
    clause = next((m for m in _CLAUSE.finditer(text) if _starts_clause(text, m.start())), None)
    if clause:
        facts += _verb_facts(clause, person)
    mine = _MY_CLAUSE.search(text)
    if mine:
        value = _object(mine.group("rest"))
        noun = mine.group("noun")
        if value and not _is_pronoun_phrase(value):
            be = mine.group("verb")
            wh = "Who" if noun.split()[-1] in _PERSON_NOUNS else "What"
            said = f"{person.possessive} {noun} {be} {person.swap(value)}"
            facts.append(
                Fact(
                    f"{wh} {be} {person.possessive} {noun}?",
                    person.answer(value),
                    statement=upper_first(said),
                    about=person.name,
                )
            )
    return facts


def named_facts(sentence: str, speaker: str | None, names: Iterable[str]) -> list[Fact]:
    """The facts `sentence` states about someone or something named, other than its speaker.

    `names` are the names to look for (the index's entities in the sentence). "My neighbour
    Quillon Varga keeps 37 ferrets." gives *Who is your neighbour?* → *Quillon Varga*,
    *What does Quillon Varga keep?* → *37 ferrets* and *How many ferrets does Quillon Varga
    keep?* → *37*. Answers turn the speaker's pronouns like `first_person_facts` does.
    """
    text = _without_time(sentence)
    voice = _Person(speaker, speaker)
    facts: list[Fact] = []
    for name in names:
        if not name[:1].isupper() or name == speaker:
            continue
        escaped = re.escape(name)
        role = re.search(rf"{_CLAUSE_START}[Mm]y (?P<role>(?:[a-z]+ )?[a-z]+),? {escaped}\b", text)
        noun = role.group("role") if role else ""
        words = noun.split()
        if words and all(w in _PERSON_NOUNS or w not in STOPWORDS for w in words):
            asked = "Who is" if noun.split()[-1] in _PERSON_NOUNS else "What is the name of"
            said = f"{voice.possessive} {noun} is {name}"
            facts.append(
                Fact(
                    f"{asked} {voice.possessive} {noun}?",
                    name,
                    statement=upper_first(said),
                    about=voice.name,
                )
            )
        clause = re.compile(
            rf"{_CLAUSE_START}(?:(?:[Mm]y|[Oo]ur) (?:[a-z]+ ){{1,2}})?{escaped}"
            r"(?P<aux>(?:\s+has|\s+had|\s+is|\s+was)?)"
            + _ADVERBS
            + r"\s+(?P<verb>[a-z]+)\b(?P<rest>[^.!?]*)"
        )
        found = next((m for m in clause.finditer(text) if _starts_clause(text, m.start())), None)
        if found:
            person = _Person(name, speaker)
            facts += [fact for fact in _verb_facts(found, person) if fact.question]
    return facts


@dataclass(frozen=True)
class _Person:
    """Who a fact is about: a named person (third person) or the memory's owner ("you").

    `voice` is who said the sentence, whose "my" and "we" an answer turns: the person
    themselves for first-person facts; the speaker (None: the memory's owner) for a clause
    about someone else ("My neighbour Quillon Varga keeps ...").
    """

    name: str | None
    voice: str | None

    @property
    def named(self) -> bool:
        """Whether the fact is about someone other than the one who said it."""
        return self.name != self.voice

    @property
    def subject(self) -> str:
        return self.name or "you"

    @property
    def possessive(self) -> str:
        return f"{self.name}'s" if self.name else "your"

    def helper(self, word: str) -> str:
        if self.name:
            return word
        return {"has": "have", "is": "are", "was": "were", "does": "do"}.get(word, word)

    def swap(self, text: str) -> str:
        return third_person(text) if self.voice else second_person(text)

    def answer(self, span: str) -> str:
        return upper_first(self.swap(span.strip()))


def mention_clause(sentence: str, title: str, speaker: str | None) -> str | None:
    """The clause of `sentence` that names `title`, in the third person (the second for
    notes, `speaker` None), capitalized; None if no clause names it.

    Clauses end at punctuation (not quotation marks: titles stay) and at conjunctions; a
    clause that is little more than the name gives the whole sentence. A leading
    "I" with its auxiliary is dropped: what Gina's "Oh, and btw - I've been working hard on my
    online store and just teamed up with a local artist." says about *online store* is
    *Working hard on their online store*.
    """
    key = f" {normalize_name(title)} "
    if key.strip() == "":
        return None
    for part in _CLAUSE_END.split(sentence):
        if key not in f" {normalize_name(part)} ":
            continue
        if len(part.split()) < len(key.split()) + 2:
            part = sentence  # the name alone ("Those dreams"): the whole sentence says more
        text = _LEADING_I.sub("", part.strip()) if speaker else part.strip()
        return _Person(speaker, speaker).answer(text.strip(" -")) or None
    return None


def inflect(verb: str, tag: str) -> str:
    """`verb` (a lemma) inflected for `tag` (VBD, VBZ, VBG, VBN), or unchanged if unknown."""
    forms = _inflections(verb).get(tag)
    return forms[0] if forms else verb


def third_person(text: str) -> str:
    """`text` with first-person pronouns turned to the third person (my → their)."""
    return _swap_pronouns(text, _PRONOUNS)


def second_person(text: str) -> str:
    """`text` with first-person pronouns turned to the second person (my → your)."""
    return _swap_pronouns(text, _TO_YOU)


def _swap_pronouns(text: str, table: dict[str, str]) -> str:
    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        return table.get(word.lower(), word)

    pronoun = r"(?<![\w-])(?:[Mm]y|mine|me|myself|[Oo]ur|ours|us|[Ww]e|ourselves|I)\b(?!-)"
    return re.sub(pronoun, swap, text)


def _verb_facts(clause: re.Match[str], person: _Person) -> list[Fact]:
    aux = clause.group("aux").strip(" '’").lower()
    if person.named:
        aux = {"is": "am", "has": "have"}.get(aux, aux)
    adverbs = clause.group("adverbs").split()
    verb = clause.group("verb").lower()
    lemma = verb_lemma(verb)
    skipped = _SKIPPED_VERBS - _STATED_OF_OTHERS if person.named else _SKIPPED_VERBS
    if lemma is None or lemma in skipped:
        return []
    if "been" in adverbs and not verb.endswith("ing"):
        return []  # passive ("I've been blessed with"): the speaker did not do it
    if verb.endswith("ing") and (aux in ("m", "am", "was") or "been" in adverbs):
        helper = "was" if aux == "was" else "has" if "been" in adverbs else "is"
        asked = f"been {verb}" if helper == "has" else verb
    elif _is_past(verb, lemma) and aux in ("", "ve", "have", "had"):
        helper, asked = "did", lemma
    elif verb == lemma and aux == "" and lemma in _PRESENT_VERBS and not person.named:
        helper, asked = "does", lemma
    elif person.named and aux == "" and verb in _inflections(lemma).get("VBZ", ()):
        helper, asked = "does", lemma  # "Quillon keeps 37 ferrets"
    else:
        return []
    phrase = _object(clause.group("rest"))
    if phrase is None or any(word in _SECOND_PERSON for word in phrase.lower().split()):
        return []
    if _SUBJECT_PRONOUN.search(phrase):
        return []  # a clause, not an object ("I'm always working on", "we'd try them")
    phrase = _DEMONSTRATIVE.sub("the", phrase)

    def ask(wh: str, tail: str) -> str:
        return f"{wh} {person.helper(helper)} {person.subject} {asked}{tail}?"

    words = phrase.split()
    particle = ""
    if len(words) > 1 and words[0].lower() in _PARTICLES:  # "signed up for a class"
        particle, words = f" {words[0].lower()}", words[1:]
        asked, phrase = asked + particle, " ".join(words)
    facts: list[tuple[str | None, str]] = []
    if lemma == "go" and words[0].lower().endswith("ing"):  # "going camping": only "when"
        facts.append((None, words[0]))
    elif words[0].lower() == "to" and len(words) > 1 and verb_lemma(words[1].lower()) == words[1]:
        facts.append((ask("What", " to do"), " ".join(words[1:])))  # "started to learn X"
    elif words[0].lower() in _PREPOSITIONS:
        preposition, target = words[0].lower(), " ".join(words[1:])
        if target and _has_content(target) and not _is_pronoun_phrase(target):
            if preposition in _PLACE_PREPOSITIONS and lemma in _PLACE_VERBS:
                facts.append((ask("Where", ""), target))
            else:
                facts.append((ask("What", f" {preposition}"), target))
    else:
        direct, tail = _split_at_preposition(words)
        gerund = any(w.lower().endswith("ing") for w in direct.split()[1:])
        if gerund and _has_content(direct):  # "took my fam camping": only "when"
            facts.append((None, direct))
        elif _has_content(direct) and not _is_pronoun_phrase(direct):
            wh = "Who" if lemma in _PERSON_VERBS and _is_people(direct) else "What"
            if tail and lemma in _TRANSFER_VERBS and not _is_pronoun_phrase(tail):
                facts.append((ask(wh, f" {person.swap(tail)}"), direct))
            else:  # the phrase belongs to the object: "planning a trip to Paris"
                facts.append((ask(wh, ""), phrase if tail and len(words) <= 6 else direct))
            counted = _counted(direct)
            if counted and wh == "What":
                number, noun = counted
                facts.append((ask(f"How many {person.swap(noun)}", ""), number))
    if not facts:
        return []
    when = ask("When", f" {person.swap(phrase)}") if helper in ("did", "is", "was") else None
    subject = person.name or "You"
    if helper == "did":
        told = f"{inflect(lemma, 'VBD')}{particle}"
    elif helper == "does":
        told = (inflect(lemma, "VBZ") if person.name else lemma) + particle
    else:  # "is researching", "has been researching"
        told = f"{person.helper(helper)} {asked}"
    statement = f"{subject} {told} {person.swap(phrase)}"
    happened = statement if helper == "did" else None
    return [
        Fact(question, person.answer(span), when, happened, statement, person.name)
        for question, span in facts
    ]


def _counted(phrase: str) -> tuple[str, str] | None:
    """A counted noun phrase split in its number and its noun ("12 quince trees" → "12",
    "quince trees"), or None."""
    number, _, noun = phrase.partition(" ")
    if not (number.isdigit() or number.lower() in _NUMBER_WORDS) or not noun:
        return None
    if not _has_content(noun) or _is_pronoun_phrase(noun) or noun.split()[0].lower() == "of":
        return None
    return number, noun


def _object(rest: str) -> str | None:
    """The object of a clause: `rest` up to the first clause boundary, if short enough."""
    rest = rest.strip()
    first = re.match(r"\S+", rest)  # a boundary word can start the object ("that lake")
    cut = _BOUNDARY.search(rest, first.end() if first else 0)
    phrase = (rest[: cut.start()] if cut else rest).strip().rstrip(" '’\"“”")
    phrase = re.sub(r"\s+(?:too|again|now|then|lately|today|anymore|though)$", "", phrase)
    words = phrase.split()
    if len(words) > _MAX_OBJECT_WORDS:  # keep the object up to its last short prepositional
        kept = max(  # phrase: "12 quince trees [in the community garden on Lantvik Street]"
            (n for n, word in enumerate(words[:_MAX_OBJECT_WORDS]) if n and word in _PREPOSITIONS),
            default=0,
        )
        words = words[:kept]
    if not words:
        return None
    return " ".join(words)


def _split_at_preposition(words: list[str]) -> tuple[str, str]:
    for position, word in enumerate(words[1:], start=1):
        if word.lower() in _PREPOSITIONS:
            return " ".join(words[:position]), " ".join(words[position:])
    return " ".join(words), ""


def _starts_clause(text: str, position: int) -> bool:
    """Whether "I" at `position` starts a clause ("so I went"), not a relative clause
    ("the figurines I bought")."""
    before = text[:position].rstrip()
    if not before or before[-1] in ',;:!?.(—–-"“':
        return True
    return before.split()[-1].lower() in _CLAUSE_OPENERS


def _is_people(text: str) -> bool:
    """Whether a noun phrase names people: a name, or a word like "friends" or "mom"."""
    words = text.split()
    last = words[-1].lower().rstrip("s")
    return (
        last in _PERSON_NOUNS
        or last in ("people", "folk", "kid", "child", "children")
        or (words[0][:1].isupper() and words[0] not in ("A", "An", "The"))
    )


def _has_content(text: str) -> bool:
    return any(word.lower().strip("'’") not in STOPWORDS for word in text.split())


def _is_pronoun_phrase(text: str) -> bool:
    return all(
        word.lower() in STOPWORDS or word.lower() in _PRONOUNS or word.lower() in _SECOND_PERSON
        for word in text.split()
    )


def _with_subject(text: str) -> str:
    """`text` with the "I" a chat often drops restored: "Lost my job" → "I lost my job"."""
    first, _, rest = text.partition(" ")
    word = first.lower()
    if rest and first[:1].isupper() and (lemma := verb_lemma(word)) and _is_past(word, lemma):
        return f"I {word} {rest}"
    return text


def _without_time(sentence: str) -> str:
    text = sentence
    for expression in time_expressions(sentence):
        text = re.sub(rf"\s*\b{re.escape(expression)}\b", "", text, count=1)
    return re.sub(r"\s{2,}", " ", text).strip()


def verb_lemma(verb: str) -> str | None:
    """The lemma of `verb` as a verb ("lost" → "lose"), or None if it is not one."""
    lemmas = _all_lemmas(verb).get("VERB")
    return lemmas[0] if lemmas else None


def _is_past(verb: str, lemma: str) -> bool:
    forms = _inflections(lemma)
    return verb in forms.get("VBD", ()) or verb in forms.get("VBN", ())


@lru_cache(maxsize=4096)
def _all_lemmas(word: str) -> dict[str, tuple[str, ...]]:
    import lemminflect

    return dict(lemminflect.getAllLemmas(word))


@lru_cache(maxsize=4096)
def _inflections(lemma: str) -> dict[str, tuple[str, ...]]:
    import lemminflect

    return dict(lemminflect.getAllInflections(lemma, upos="VERB"))
