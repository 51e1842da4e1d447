"""The corpus of the shared tiny adapter (`tiny_notes_memory` in conftest.py): three documents —
two notes and a conversation — cut into four text units, with sources, timestamps, turns and
speakers (imported as `tiny_notes`; tests/ is on sys.path)."""

from __future__ import annotations

from ragtune.corpus.types import Document, TextUnit, Turn

#: What the tests ask it: one unit holds the answer's words.
QUESTION = "Who painted a sunrise by the lake?"


def corpus() -> tuple[list[Document], list[TextUnit]]:
    """The documents and their text units."""
    trip = "Caroline went to the LGBTQ support group on 7 May 2023. Melanie painted a sunrise."
    chat = "Ann: I adopted a dog named Rex.\nBob: Rex loves camping in the mountains."
    facts = "Fact 3 is 21. Fact 4 is 28."
    documents = [
        Document(
            Document.make_id("notes/trip.md", trip),
            "trip",
            trip,
            "notes/trip.md",
            "2023-05-08T13:56:00",
        ),
        Document(
            Document.make_id("locomo.json#conv-1/session_1", chat),
            "session 1",
            chat,
            "locomo.json#conv-1/session_1",
            "2023-06-01T09:00:00",
            turns=(Turn("D1:1", "Ann", 0, 30), Turn("D1:2", "Bob", 31, len(chat))),
        ),
        Document(Document.make_id("notes/facts.md", facts), "facts", facts, "notes/facts.md"),
    ]
    trip_doc, chat_doc, facts_doc = documents
    pieces = [
        (trip_doc, trip[:55], (), ()),
        (trip_doc, trip[56:], (), ()),
        (chat_doc, chat, ("D1:1", "D1:2"), ("Ann", "Bob")),
        (facts_doc, facts, (), ()),
    ]
    units: list[TextUnit] = []
    for document, text, turn_ids, speakers in pieces:
        start = document.text.index(text)
        chunk_index = sum(u.document_id == document.id for u in units)
        units.append(
            TextUnit(
                TextUnit.make_id(document.id, start, text),
                document.id,
                chunk_index,
                text,
                len(text.split()),
                start,
                start + len(text),
                document.timestamp,
                turn_ids,
                speakers,
            )
        )
    assert units[1].text == "Melanie painted a sunrise."
    return documents, units
