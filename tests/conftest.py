"""Fixtures of the LLM index-path tests (`test_index_llm.py`, `test_index_teacher_steps.py`):
the notes of `llm_index_scenario` ingested into fresh workspaces. Test modules may define their
own fixtures of the same names (`test_index_resume.py` does). The CLI tests share `cli_runner`.

And of the synthesis tests: a LoCoMo slice with a heuristic index, the slice synthesized once per
module (`test_synth_pipeline.py`, `test_synth_filters.py`), and every synthesis strategy run on
the slice once per module (`test_synth_strategies.py`, `test_synth_local_qa.py`,
`test_synth_global_qa.py`). Their helpers are imported inside the fixtures, to keep this module
light for the other tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from llm_index_scenario import DOCS
from ragtune.config import MemoryConfig, load_config
from ragtune.corpus import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.ingestion import ingest
from ragtune.workspace import Workspace

if TYPE_CHECKING:
    from ragtune.synth import DatasetCard
    from synth_runs import Run


@pytest.fixture(scope="module")
def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    return [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_workspace(
    tmp_path: Path, corpus: Path, tiny_overrides: list[str]
) -> Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]]:
    """Ingests the corpus into a new workspace with the given `index.*` overrides."""
    made = 0

    def make(*overrides: str) -> tuple[Workspace, MemoryConfig, list[TextUnit]]:
        nonlocal made
        made += 1
        config = load_config(
            None,
            [f"corpus.path={corpus}", "index.extractor=llm", *tiny_overrides, *overrides],
        )
        workspace = Workspace.at(tmp_path / f"memory-{made}", create=True)
        ingest(workspace, config, progress=False)
        units = read_text_units(workspace.text_units_path)
        assert len(units) == len(DOCS)
        return workspace, config, units

    return make


# --- a LoCoMo slice with a heuristic index, for the synthesis tests -------------------------------

#: Sessions of conv-26 in the slice (the first four: Caroline and Melanie, May to June 2023).
SLICE_SESSIONS = 4


@pytest.fixture(scope="session")
def locomo_slice(locomo_dev: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conv-26 of the LoCoMo dev file cut to its first sessions (with their QA), as a file."""
    import json

    record = json.loads(locomo_dev.read_text(encoding="utf-8"))[0]
    conversation = record["conversation"]
    kept = {
        key: value
        for key, value in conversation.items()
        if not key.startswith("session_") or int(key.split("_")[1]) <= SLICE_SESSIONS
    }
    prefixes = tuple(f"D{n}:" for n in range(1, SLICE_SESSIONS + 1))
    record["conversation"] = kept
    record["qa"] = [
        qa
        for qa in record["qa"]
        if qa["evidence"] and all(e.startswith(prefixes) for e in qa["evidence"])
    ]
    path = tmp_path_factory.mktemp("locomo-slice") / "conv-26-slice.json"
    path.write_text(json.dumps([record]), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def indexed_slice(
    locomo_slice: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A workspace of the LoCoMo slice, ingested (tiny model's tokenizer) and indexed with the
    heuristic extractor; its memory.yaml names every synthesis strategy (the default runs two),
    so that the synthesis tests see them all. Shared: copy it (`synth_workspace`) before
    writing to it."""
    from ragtune.config import save_config
    from ragtune.index.pipeline import build_index
    from ragtune.synth import STRATEGY_NAMES

    overrides = [
        f"chunking.tokenizer=hf:{tiny_model_dir}",
        f"model=hf:{tiny_model_dir}",
        f"corpus.path={locomo_slice}",
        f"synth.strategies=[{','.join(STRATEGY_NAMES)}]",
    ]
    config = load_config(None, overrides)
    workspace = Workspace.at(tmp_path_factory.mktemp("slice") / "memory", create=True)
    ingest(workspace, config, progress=False)
    build_index(workspace, config, progress=False)
    save_config(config, workspace.config_path)
    return workspace.root


@pytest.fixture
def synth_workspace(indexed_slice: Path, tmp_path: Path) -> Workspace:
    """A private copy of `indexed_slice` (memory.yaml names the tiny model; heuristic writer)."""
    import shutil

    target = tmp_path / "memory"
    shutil.copytree(indexed_slice, target)
    return Workspace.at(target)


# --- the slice synthesized with its memory.yaml, once per module ----------------------------------


@pytest.fixture(scope="module")
def synthesized(
    indexed_slice: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, DatasetCard]:
    """The slice synthesized with its memory.yaml (heuristic writer, paraphrase split)."""
    from synth_support import synthesized_copy

    return synthesized_copy(indexed_slice, tmp_path_factory.mktemp("synthesized"))


# --- every synthesis strategy run on the slice, once per module and writer ------------------------


@pytest.fixture(scope="module")
def slice_copy(indexed_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    import shutil

    target = tmp_path_factory.mktemp("synth-strategies") / "memory"
    shutil.copytree(indexed_slice, target)
    return Workspace.at(target)


@pytest.fixture(scope="module")
def heuristic(slice_copy: Workspace) -> Run:
    from synth_runs import Run, context_of, run_all

    config = load_config(slice_copy.config_path)
    context = context_of(slice_copy, config)
    generated, earlier = run_all(context, config)
    return Run(context, config, generated, earlier)


@pytest.fixture(scope="module")
def taught(slice_copy: Workspace) -> Run:
    from ragtune.index.tables import read_index
    from synth_runs import Run, TeacherRules, context_of, fake_teacher, run_all

    config = load_config(slice_copy.config_path)
    index = read_index(slice_copy)
    titles = {entity.title for entity in index.entities}
    assert {"Melanie", "Sweden"} <= titles
    rules = TeacherRules(not_json_entity="Sweden", unnamed_entity="Melanie")
    rules.not_json_unit = read_text_units(slice_copy.text_units_path)[0].text
    context = context_of(slice_copy, config, fake_teacher(rules))
    generated, earlier = run_all(context, config)
    return Run(context, config, generated, earlier, rules)


@pytest.fixture
def cli_runner() -> Iterator[CliRunner]:
    """A CliRunner; the `ragtune` logger that the command configures is restored afterwards."""
    logger = logging.getLogger("ragtune")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield CliRunner()
    logger.handlers[:], logger.level, logger.propagate = saved


# --- a small trained memory, for the evaluation tests ---------------------------------------------


@pytest.fixture(scope="session")
def tiny_locomo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ragtune.testing.tiny_locomo_conversation` as a LoCoMo JSON file."""
    import json

    from ragtune.testing import tiny_locomo_conversation

    path = tmp_path_factory.mktemp("tiny-locomo") / "tiny.json"
    path.write_text(json.dumps([tiny_locomo_conversation()]), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_memory(
    tiny_model_dir: Path, tiny_locomo_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """The tiny LoCoMo conversation ingested and tuned into the tiny model (2 steps)."""
    from ragtune.testing import build_tiny_memory

    root = build_tiny_memory(
        tmp_path_factory.mktemp("tiny-memory") / "memory", tiny_model_dir, tiny_locomo_file
    )
    return Workspace.at(root)


# --- one memory tuned into the embedded model, for the integration suites ------------------------


@pytest.fixture(scope="session")
def embedded_memory(embedded_model: object, run_dir: Path) -> Path:
    """The notes of `notes` ingested, indexed, synthesized and tuned into the embedded SmolLM2
    (about a minute on 2 cores), once per run — by the first pytest-xdist worker that needs it,
    while the others wait: the LangChain and LlamaIndex suites, the chains and the README
    sections share it. Read it; copy it before writing to it."""
    from filelock import FileLock

    from notes import NOTES, SETTINGS
    from ragtune.corpus.jsonl import SourceText
    from ragtune.ingestion import ingest_texts
    from ragtune.pipeline import tune_memory

    root = run_dir / "embedded-memory"
    with FileLock(str(run_dir / "embedded-memory.lock")):
        if not (root / "adapters" / "default" / "manifest.json").is_file():
            texts = [SourceText(text, metadata) for text, metadata in NOTES]
            ingest_texts(texts, root, SETTINGS)
            tune_memory(root, SETTINGS)
    return root


@pytest.fixture(scope="session")
def tiny_notes_memory(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny adapter of the model and CLI tests: the notes and conversation of `tiny_notes`
    (four text units) with an adapter of the tiny model trained two steps in full precision
    (so merging it into the float32 base is exact up to rounding). Read it; copy it before
    writing to it."""
    from ragtune.corpus.tables import write_documents, write_text_units
    from ragtune.train.trainer import train_adapter
    from tiny_notes import corpus
    from train_support import train_config, train_workspace

    workspace = train_workspace(tmp_path_factory.mktemp("tiny-notes") / "memory")
    documents, units = corpus()
    write_text_units(workspace.text_units_path, units)
    write_documents(workspace.documents_path, documents, units)
    config = train_config(tiny_model_dir, "train.lr=0.001", "train.quantization=none")
    train_adapter(workspace, config, progress=False)
    return workspace.root
