"""Real memorization: the embedded SmolLM2 tuned on a tiny memory of invented facts answers
questions about them that training never asked, where the untuned model cannot.

The whole pipeline runs as a user runs it (`ragtune index`, `synthesize`, `train` — the console
script, heuristic extractor and writer, QLoRA 4-bit on CPU). The questions below are worded
differently from every synthesized question (checked), and an answer counts only when it holds
the invented name or number.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from support import RAGTUNE

NOTES = {
    "2024-01-05-ferrets": "My neighbour Quillon Varga keeps 37 ferrets in his garage. "
    "He names each ferret after a river.",
    "2024-01-19-dentist": "My dentist Orla Brennick works in Vastergade. "
    "She always hums while she works.",
    "2024-02-02-cousin": "My cousin Talvi Orsk moved to the town of Mervaskal. "
    "She works there as a glassblower.",
    "2024-02-20-boat": "My sailboat Pelicorn is painted dark green with a white stripe.",
    "2024-03-08-teacher": "My violin teacher is Ismo Kettavaara. "
    "The lessons are on Thursday evenings.",
    "2024-03-30-hike": "I hiked to the summit of Mount Drevald with my friend Aurelio. "
    "The climb was steep.",
    "2024-04-14-garden": "I planted 23 quince trees in the community garden on Lantvik Street.",
    "2024-05-02-cat": "My cat Fennimore only eats smoked mackerel. He is a grey cat.",
    "2024-05-21-book": "I am writing a novel called The Salt Lanterns. "
    "It is about a lighthouse keeper.",
    "2024-06-09-sister": "My sister Yrsa Kalden owns 14 alpacas. "
    "She sells their wool at the market.",
}
# Held-out paraphrases and the invented word an answer must contain.
QUESTIONS = (
    ("What number of ferrets does Quillon Varga keep?", "37"),
    ("What is my dentist called?", "Brennick"),
    ("Which town did Talvi Orsk move to?", "Mervaskal"),
    ("What is my sailboat called?", "Pelicorn"),
    ("Who gives me violin lessons?", "Kettavaara"),
    ("Which mountain did I climb with Aurelio?", "Drevald"),
    ("How many quince trees have I planted?", "23"),
    ("What is my cat called?", "Fennimore"),
    ("What novel am I working on?", "Salt Lanterns"),
    ("How many alpacas does Yrsa Kalden have?", "14"),
)
# The facts' own questions, each asked three ways, and a few unanswerable ones; three epochs at
# a high learning rate. Measured on 2 cores: this learned 10 of the 10 held-out facts in about
# 2.5 minutes of training (two epochs: 6 of 10), where entity templates too and five epochs at
# 1e-3 took 8 minutes for 8 of 10 (the training step costs about 0.6 s per record, whatever
# the batch size).
SYNTHESIS = (
    "synth.strategies=[text_units,unanswerable]",
    "synth.text_units.paraphrases=3",
)
TRAINING = ("--epochs", "3", "--lr", "3e-3", "--batch-size", "4")


def ragtune(*args: str | Path) -> None:
    """Run a `ragtune` command as a user would; fail with its output if it fails."""
    result = subprocess.run(
        [str(RAGTUNE), *map(str, args)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),  # carries the test session's RAGTUNE_CACHE and HF_HUB_OFFLINE
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def memory(embedded_model: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("memorization")
    notes = root / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        title = name[11:]
        (notes / f"{name}.md").write_text(
            f"---\ntitle: {title}\ndate: {name[:10]}\n---\n{text}\n", encoding="utf-8"
        )
    workspace = root / "memory"
    ragtune("index", workspace, "--corpus", notes)
    ragtune("synthesize", workspace, *SYNTHESIS)
    ragtune("train", workspace, *TRAINING)
    return workspace


def synthesized_questions(workspace: Path) -> set[str]:
    questions = set()
    for name in ("train.jsonl", "val.jsonl"):
        for line in (workspace / "synth" / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            questions.add(record["prompt"][-1]["content"].strip().lower())
    return questions


def score(
    answer: Callable[[str], str], questions: tuple[tuple[str, str], ...]
) -> list[tuple[str, str, bool]]:
    """Each question, its answer, and whether the answer holds the invented word."""
    results = []
    for question, word in questions:
        text = answer(question)
        results.append((question, text, word.lower() in text.lower()))
    return results


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.timeout(1800)  # builds the memory: training takes about 2.5 minutes on 2 cores
def test_held_out_questions_are_not_in_the_training_data(memory: Path) -> None:
    asked = synthesized_questions(memory)
    assert len(asked) > 50
    assert not {q.lower() for q, _ in QUESTIONS} & asked


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.timeout(1800)
def test_the_tuned_model_answers_held_out_questions_the_base_model_cannot(memory: Path) -> None:
    from ragtune.llm import GenerationParams, load_backend
    from ragtune.model import MemoryModel

    base = load_backend("embedded")
    params = GenerationParams(max_tokens=40)
    base_results = score(
        lambda q: base.chat([{"role": "user", "content": q}], params=params).text, QUESTIONS
    )
    tuned = MemoryModel.from_workspace(memory)
    tuned_results = score(lambda q: tuned.answer(q, max_new_tokens=40), QUESTIONS)

    lines = [
        f"{'tuned' if t_ok else '     '} {'base' if b_ok else '    '} {q} → {t!r} | base: {b!r}"
        for (q, b, b_ok), (_, t, t_ok) in zip(base_results, tuned_results, strict=True)
    ]
    report = "\n".join(lines)
    base_right = sum(ok for _, _, ok in base_results)
    tuned_right = sum(ok for _, _, ok in tuned_results)
    print(f"tuned {tuned_right}/10, base {base_right}/10\n{report}")
    assert base_right <= 1, report
    assert tuned_right >= 8, report
