"""Paraphrases of a question: the same fact asked in other words, so that knowledge in the
weights can be extracted whatever the wording of the question."""

from __future__ import annotations


def lower_first(text: str) -> str:
    """`text` with its first letter lowercased, unless its first word is "I", an acronym or
    mixed case ("LGBTQ", "iPhone"); question words are what it is meant for."""
    head = text.split(" ", 1)[0]
    if head in ("I",) or (len(head) > 1 and head[1:].lower() != head[1:]):
        return text
    return text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    """`text` with its first letter capitalized, the rest as it is."""
    return text[:1].upper() + text[1:]


def paraphrases(question: str, count: int, *, anchor: str | None, who: str | None) -> list[str]:
    """`question` and up to `count - 1` rewordings anchored on where it was said ("In the
    conversation on 8 May 2023") or by whom."""
    variants = [question]
    body = lower_first(question)
    if anchor:
        variants.append(f"{anchor}, {body}")
    if who:
        variants.append(f"From what {who} said, {body}")
    variants.append(f"Do you remember: {body}")
    return variants[:count]


def the(title: str) -> str:
    """An entity's title as a question names it: "the support group" for a common noun
    phrase, names as they are ("Caroline", "Tagus Kayak Club")."""
    return f"the {title}" if title[:1].islower() and not title.lower().startswith("the ") else title


def clause(statement: str) -> str:
    """A statement made to follow a conjunction: only an initial "You" is lowercased."""
    return "you" + statement[3:] if statement.startswith("You ") else statement
