"""The three notes of the integration tests' embedded memory (`embedded_memory` in conftest.py):
their texts and metadata, for LangChain and LlamaIndex documents alike, the settings that tune
them, and the question they answer (imported as `notes`; tests/ is on sys.path)."""

from __future__ import annotations

from typing import Any

#: (text, metadata) of each note.
NOTES: list[tuple[str, dict[str, Any]]] = [
    (
        "My sister Clara moved to Porto in March. She works at a bakery by the river.",
        {"source": "notes/clara.md", "timestamp": "2024-03-02T10:00:00"},
    ),
    (
        "Rui Matos coaches me at the kayak club on Saturdays.",
        {"source": "notes/kayak.md", "timestamp": "2024-04-06T09:00:00"},
    ),
    (
        "My cat Miso sleeps on the piano every afternoon.",
        {"source": "notes/miso.md", "timestamp": "2024-05-11T15:00:00"},
    ),
]

#: The settings the notes are tuned with: their facts and recall, trained hard.
SETTINGS = [
    "synth.strategies=[text_units,recall]",
    "train.epochs=6",
    "train.lr=0.001",
    "train.batch_size=4",
]

QUESTION = "Which city did my sister Clara move to?"

#: A question with words of every note (what a retriever asked for three passages needs).
ABOUT_ALL = "What do my sister Clara, my kayak coach and my cat do?"
