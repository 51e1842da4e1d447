"""Ask the embedded model about an ingested memory through ragtune's backend API.

Usage: python examples/demo.py WORKSPACE [QUESTION ...]

Until ragtune tunes the memory into the model, each question is answered from the text unit that
shares the most words with it, rare words counting more (a stand-in for retrieval, shown with
the answer).
"""

from __future__ import annotations

import math
import re
import sys
import time

from ragtune.corpus import TextUnit, read_documents, read_text_units
from ragtune.llm import GenerationParams, load_backend
from ragtune.workspace import Workspace

QUESTIONS = (
    "What is the name of the dog I adopted?",
    "How many sperm whales did we see in the Azores?",
    "How many seagrass shoots did the team plant?",
)
SYSTEM = "You answer questions about the user's notes. Answer in one short sentence."


def words(text: str) -> set[str]:
    """Lowercase words of three letters or more."""
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 2}


def best_unit(question: str, units: list[TextUnit]) -> TextUnit:
    """The unit sharing the most words with the question, rare words counting more."""
    unit_words = [words(unit.text) for unit in units]
    asked = words(question)
    weight = {w: math.log(len(units) / (1 + sum(w in ws for ws in unit_words))) + 1 for w in asked}
    scores = [sum(weight[w] for w in asked & ws) for ws in unit_words]
    return units[scores.index(max(scores))]


def show_index(workspace: Workspace) -> None:
    """Print what `ragtune index` found: the most connected entities and the top report."""
    if not workspace.entities_path.is_file():
        return
    from ragtune.index.tables import read_index

    index = read_index(workspace)
    ranked = sorted(index.entities, key=lambda e: (-e.degree, e.title))[:8]
    print(
        f"index: {len(index.entities)} entities, {len(index.relationships)} relationships, "
        f"{len(index.communities)} communities"
    )
    print("  most connected: " + ", ".join(f"{e.title} ({e.type})" for e in ranked))
    if index.reports:
        top = max(index.reports, key=lambda r: (r.rank, r.size))
        print(f"  top community report: {top.title}\n")


def main(workspace_path: str, questions: list[str]) -> None:
    workspace = Workspace.at(workspace_path)
    show_index(workspace)
    units = read_text_units(workspace.text_units_path)
    titles = {d.id: d.title for d in read_documents(workspace.documents_path)}
    started = time.perf_counter()
    backend = load_backend("embedded")
    print(f"loaded {backend.model_name} in {time.perf_counter() - started:.1f} s\n")
    for question in questions:
        unit = best_unit(question, units)
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Note:\n{unit.text}\n\nQuestion: {question}"},
        ]
        started = time.perf_counter()
        answer = backend.chat(messages, params=GenerationParams(max_tokens=48))
        seconds = time.perf_counter() - started
        note = f"{titles[unit.document_id]} ({unit.timestamp or 'undated'})"
        print(f"Q: {question}\n   from note: {note}")
        print(f"A: {answer.text}")
        usage = answer.usage
        print(f"   {usage.prompt_tokens}+{usage.completion_tokens} tokens, {seconds:.1f} s\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:] or list(QUESTIONS))
