"""`ragtune forget` (`ragtune.forgetting`): documents removed from a memory for real.

A memory of four notes, built once per module: two notes ingested, indexed, synthesized and
tuned into the tiny model (v1), then two more added and the adapter updated (v2, parent v1).
Each test forgets from a private copy: the adapter that answers afterwards never saw the
removed notes (v1 updated with what came after, or trained again), every version that saw them
is deleted, and their text is found nowhere in the workspace — checked here by an independent
walk over every file (parquet decoded, the teacher's SQLite cache and its WAL included).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from ragtune.adapters import AdapterVersions, Trained
from ragtune.config import MemoryConfig, load_config, save_config
from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.errors import RagtuneError
from ragtune.forgetting import ForgetReport, forget
from ragtune.index.pipeline import build_index
from ragtune.ingestion import ingest, ingest_texts
from ragtune.llm import ChatRequest, GenerationParams
from ragtune.llm.cache import CachedChatBackend, purge_responses
from ragtune.manifest import Manifest
from ragtune.synth.pipeline import synthesize
from ragtune.train.trainer import train_adapter
from ragtune.workspace import Workspace
from support import FunctionChatBackend, run_ragtune

#: The notes of v1, then those added in v2: name → text.
FIRST = {
    "clara.md": "My sister Clara moved to Porto in March 2024. She works at a bakery by the "
    "river and bakes pastel de nata every morning.",
    "kayak.md": "Rui Matos coaches me at the kayak club on Saturdays. We paddle up the Douro "
    "river to the old iron bridge.",
}
ADDED = {
    "miso.md": "My cat Miso sleeps on the piano every afternoon. Miso was adopted from the "
    "animal shelter in Braga last winter.",
    "garden.md": "Ines planted tomatoes and basil in the allotment garden on 12 May 2024. The "
    "allotment lies behind the old railway station.",
}
#: What must be found nowhere once a note is forgotten: its sentences and some of their spans.
TRACES = {
    "miso.md": [
        "My cat Miso sleeps on the piano every afternoon.",
        "Miso was adopted from the animal shelter in Braga last winter.",
        "sleeps on the piano",
        "animal shelter in Braga",
    ],
    "clara.md": [
        "My sister Clara moved to Porto in March 2024.",
        "She works at a bakery by the river and bakes pastel de nata every morning.",
        "moved to Porto",
        "bakes pastel de nata",
    ],
}
TRAIN = ("train.quantization=none", "train.max_steps=2", "train.batch_size=2")
PARAMS = GenerationParams(max_tokens=8)


# --- the memory ---------------------------------------------------------------------------------


def write_notes(folder: Path, notes: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in notes.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")


def build_and_train(workspace: Workspace, config: MemoryConfig, *, update: bool) -> None:
    ingest(workspace, config, progress=False)
    build_index(workspace, config, progress=False)
    save_config(config, workspace.config_path)
    synthesize(workspace, config, progress=False)
    train_adapter(workspace, config, update=update, progress=False)


@pytest.fixture(scope="module")
def two_versions(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding `notes/` (all four notes) and `memory/` (adapter v1 from the first
    two notes, v2 its update after the other two were added). Copy it before writing."""
    root = tmp_path_factory.mktemp("forget")
    notes = root / "notes"
    write_notes(notes, FIRST)
    config = load_config(
        None,
        [
            f"chunking.tokenizer=hf:{tiny_model_dir}",
            f"model=hf:{tiny_model_dir}",
            f"corpus.path={notes}",
            *TRAIN,
        ],
    )
    workspace = Workspace.at(root / "memory", create=True)
    build_and_train(workspace, config, update=False)
    write_notes(notes, ADDED)
    build_and_train(workspace, load_config(workspace.config_path), update=True)
    versions = AdapterVersions(workspace)
    assert versions.numbers() == [1, 2] and versions.current() == 2
    return root


@dataclass
class Memory:
    workspace: Workspace
    notes: Path

    @property
    def config(self) -> MemoryConfig:
        return load_config(self.workspace.config_path)

    @property
    def versions(self) -> AdapterVersions:
        return AdapterVersions(self.workspace)

    def document(self, name: str) -> str:
        """The id of the document of note `name`."""
        return next(d.id for d in read_documents(self.workspace.documents_path) if d.source == name)

    def units(self, name: str) -> set[str]:
        """The ids of the text units of note `name`."""
        document = self.document(name)
        units = read_text_units(self.workspace.text_units_path)
        return {unit.id for unit in units if unit.document_id == document}

    def trained_units(self, number: int) -> frozenset[str]:
        trained = Trained.read(self.versions.folder(number))
        assert trained is not None
        return trained.units


@pytest.fixture
def memory(two_versions: Path, tmp_path: Path) -> Memory:
    target = tmp_path / "copy"
    shutil.copytree(two_versions, target, symlinks=True)
    return Memory(Workspace.at(target / "memory"), target / "notes")


# --- an independent search for the removed text ----------------------------------------------


def readable(path: Path) -> list[bytes]:
    """The file's bytes, and for parquet its decoded rows too (its pages are compressed)."""
    data = [path.read_bytes()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        for ascii_only in (False, True):
            text = json.dumps(rows, ensure_ascii=ascii_only, default=str)
            data.append(text.encode("utf-8"))
    return data


def holders(root: Path, texts: list[str]) -> dict[str, list[str]]:
    """Every file under `root` holding one of `texts` (as written or JSON-escaped): relative
    path → the texts found."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        blobs = readable(path)
        for text in texts:
            forms = {
                text.encode("utf-8"),
                json.dumps(text)[1:-1].encode("utf-8"),
                json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8"),
            }
            if any(form in blob for form in forms for blob in blobs):
                found.setdefault(path.relative_to(root).as_posix(), []).append(text)
    return found


def cached(workspace: Workspace, calls: list[str]) -> CachedChatBackend:
    """The workspace's teacher cache in front of a fake teacher that records what it is asked
    and answers each question with the answer `ANSWERS` holds for it."""

    def respond(request: ChatRequest) -> str:
        question = request.messages[-1]["content"]
        calls.append(question)
        return ANSWERS[question]

    return CachedChatBackend(FunctionChatBackend(respond), workspace.llm_cache_path)


#: Cached teacher answers: two mention the miso note (in the request, in the response), one not.
ANSWERS = {
    "Summarize: My cat Miso sleeps on the piano every afternoon.": "A cat sleeps on a piano.",
    "Where did the cat come from?": "Miso was adopted from the animal shelter in Braga last "
    "winter.",
    "Who coaches at the kayak club?": "Rui Matos, on Saturdays.",
}


def ask(backend: CachedChatBackend, question: str) -> str:
    return backend.chat([{"role": "user", "content": question}], params=PARAMS).text


# --- forgetting a note: the adapter ----------------------------------------------------------


def test_forgetting_a_document_added_in_v2_continues_v1_and_deletes_v2(memory: Memory) -> None:
    miso, garden = memory.units("miso.md"), memory.units("garden.md")
    assert miso <= memory.trained_units(2) and not miso & memory.trained_units(1)
    calls: list[str] = []
    backend = cached(memory.workspace, calls)
    for question in ANSWERS:
        ask(backend, question)
    backend.close()
    assert len(calls) == 3
    assert holders(memory.workspace.root, TRACES["miso.md"])  # before: it is everywhere

    report = forget(
        memory.workspace, memory.config, documents=[memory.document("miso.md")], progress=False
    )

    versions = memory.versions
    assert report.adapter_version == 3 == versions.current()
    assert Manifest.read(versions.folder(3)).parent == 1
    assert report.removed_versions == [2]
    assert versions.numbers() == [1, 3]
    assert not miso & memory.trained_units(3)
    assert garden <= memory.trained_units(3)  # what came after v1 was trained on again
    assert report.adapter.startswith("v3: v1 (which never saw them) updated with the ")
    assert report.text_units == len(miso)
    assert report.cache_responses == 2
    assert report.leftovers == [] and report.checked
    # The tables, the records and the forgotten list.
    names = {d.source for d in read_documents(memory.workspace.documents_path)}
    assert names == {"clara.md", "kayak.md", "garden.md"}
    for line in memory.workspace.train_path.read_text(encoding="utf-8").splitlines():
        assert not set(json.loads(line)["source_ids"]) & miso
    assert report.records_retired > 0
    # Found nowhere, by this test's own search.
    assert holders(memory.workspace.root, TRACES["miso.md"]) == {}
    # The cache: only the two responses that mention the note are gone.
    calls.clear()
    backend = cached(memory.workspace, calls)
    assert ask(backend, "Who coaches at the kayak club?") == "Rui Matos, on Saturdays."
    assert calls == []  # answered from the cache
    ask(backend, "Where did the cat come from?")
    assert calls == ["Where did the cat come from?"]  # asked again: its answer was deleted
    backend.close()


def test_forgetting_a_document_of_v1_trains_again_from_the_base_model(memory: Memory) -> None:
    clara = memory.units("clara.md")
    assert clara <= memory.trained_units(1)

    report = forget(memory.workspace, memory.config, sources=["clara.md"], progress=False)

    versions = memory.versions
    assert versions.numbers() == [3] and versions.current() == 3
    assert Manifest.read(versions.folder(3)).parent is None
    assert report.removed_versions == [1, 2]
    assert report.adapter.startswith("v3: trained again from the base model")
    trained = memory.trained_units(3)
    assert trained and not trained & clara
    assert memory.units("miso.md") <= trained
    assert report.leftovers == []
    assert holders(memory.workspace.root, TRACES["clara.md"]) == {}
    forgotten = json.loads(memory.workspace.forgotten_path.read_text(encoding="utf-8"))
    assert [entry["source"] for entry in forgotten.values()] == ["clara.md"]
    assert set(next(iter(forgotten.values()))["units"]) == clara
    assert "My sister Clara" not in memory.workspace.forgotten_path.read_text(encoding="utf-8")


def test_forgetting_the_only_document_added_since_v1_brings_v1_back(memory: Memory) -> None:
    """Nothing is left that v1 was not trained on: v1 answers again, no training."""
    garden = memory.document("garden.md")
    forget(memory.workspace, memory.config, documents=[garden], retrain=False, progress=False)

    report = forget(memory.workspace, memory.config, sources=["miso.md"], progress=False)

    assert report.adapter == "v1 (which never saw them) answers again; nothing was added after it"
    assert memory.versions.numbers() == [1] and memory.versions.current() == 1
    assert report.removed_versions == [2]
    assert report.train_seconds < 5


def test_a_version_that_saw_a_document_forgotten_without_retraining_is_not_continued(
    memory: Memory,
) -> None:
    """garden.md forgotten with --no-retrain (v2 saw it), a note added and trained as v3 (an
    update of v2); forgetting that note must not continue v2, which never saw it but saw
    garden.md: v1 is continued, and v2 and v3 go."""
    garden = memory.units("garden.md")
    forget(memory.workspace, memory.config, sources=["garden.md"], retrain=False, progress=False)
    write_notes(
        memory.notes,
        {
            "bike.md": "Tomas repaired my bicycle chain at his workshop in "
            "Coimbra on a rainy Tuesday."
        },
    )
    config = load_config(memory.workspace.config_path, [f"corpus.path={memory.notes}"])
    build_and_train(memory.workspace, config, update=True)
    assert memory.versions.current() == 3
    assert Manifest.read(memory.versions.folder(3)).parent == 2

    report = forget(memory.workspace, memory.config, sources=["bike.md"], progress=False)

    versions = memory.versions
    assert versions.current() == 4 and Manifest.read(versions.folder(4)).parent == 1
    assert report.removed_versions == [2, 3]
    assert versions.numbers() == [1, 4]
    assert not garden & memory.trained_units(4)
    assert memory.units("miso.md") <= memory.trained_units(4)


def test_no_retrain_leaves_every_version_as_it_was(memory: Memory) -> None:
    weights = {
        n: (memory.versions.folder(n) / "adapter_model.safetensors").read_bytes() for n in (1, 2)
    }

    report = forget(
        memory.workspace, memory.config, sources=["miso.md"], retrain=False, progress=False
    )

    versions = memory.versions
    assert versions.numbers() == [1, 2] and versions.current() == 2
    for number, data in weights.items():
        assert (versions.folder(number) / "adapter_model.safetensors").read_bytes() == data
    assert report.removed_versions == []
    assert report.adapter_version == 2
    assert report.adapter.startswith("v2 left as it is, and its weights saw them")
    assert "v2" in report.adapter.split("kept until then: ")[1]


def test_a_run_cut_short_is_finished_by_running_it_again(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed in training: the notes are removed, the adapter still saw them. The same
    command again finds them in forgotten.json and finishes: v2 goes."""
    import ragtune.train.trainer as trainer

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "train_adapter", killed)
        with pytest.raises(KeyboardInterrupt):
            forget(memory.workspace, memory.config, sources=["miso.md"], progress=False)
    assert memory.versions.numbers() == [1, 2] and memory.versions.current() == 2
    assert "miso.md" not in {d.source for d in read_documents(memory.workspace.documents_path)}

    report = forget(memory.workspace, memory.config, sources=["miso.md"], progress=False)

    assert memory.versions.current() == 3 and report.removed_versions == [2]
    assert Manifest.read(memory.versions.folder(3)).parent == 1
    assert not report.checked
    assert report.summary_lines()[-1].startswith("not checked for their text")
    assert holders(memory.workspace.root, TRACES["miso.md"]) == {}


def test_with_every_version_tainted_and_no_records_left_the_adapter_is_deleted(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ragtune.train.trainer as trainer

    monkeypatch.setattr(trainer, "check_training_data", lambda path: 0)

    report = forget(memory.workspace, memory.config, sources=["clara.md"], progress=False)

    assert report.adapter.startswith("deleted: every version saw them")
    assert report.removed_versions == [1, 2]
    assert memory.versions.numbers() == [] and memory.versions.current() is None
    assert not memory.workspace.adapter_path("default").exists()
    assert not memory.workspace.adapter_path("default").is_symlink()


def test_other_adapters_that_saw_the_document_are_named(memory: Memory) -> None:
    other = memory.workspace.adapters_dir / ".versions" / "experiment"
    shutil.copytree(memory.versions.folder(2), other / "v1")  # trained on miso.md too

    report = forget(
        memory.workspace, memory.config, sources=["miso.md"], retrain=False, progress=False
    )

    assert report.other_adapters == [
        "adapter 'experiment' (not retrained here) has versions that saw them: v1; retrain it "
        f"(`ragtune train {memory.workspace.root} train.adapter=experiment`) or delete them"
    ]
    assert report.other_adapters[0] in report.summary_lines()


# --- what stays forgotten -------------------------------------------------------------------


def test_ingesting_the_corpus_again_leaves_the_document_out_and_rag_drops_it(
    memory: Memory,
) -> None:
    from ragtune.baselines.retrieval import UnitIndex
    from ragtune.baselines.stores import open_store

    miso = memory.units("miso.md")
    index = UnitIndex.open(memory.workspace, store="qdrant-edge")
    dimension = len(index.embedder.embed(["x"])[0])
    index.close()
    store_folder = memory.workspace.root / "baselines" / "qdrant-edge" / "store"

    def stored() -> set[str]:
        store = open_store("qdrant-edge", folder=store_folder, dimension=dimension)
        try:
            return store.unit_ids()
        finally:
            store.close()

    assert miso <= stored()

    report = forget(
        memory.workspace, memory.config, sources=["miso.md"], retrain=False, progress=False
    )

    assert report.rag and report.rag[0].startswith("baselines/qdrant-edge")
    assert not miso & stored()
    assert stored() == {unit.id for unit in read_text_units(memory.workspace.text_units_path)}
    assert (memory.notes / "miso.md").is_file()  # the corpus still has it
    config = load_config(memory.workspace.config_path, [f"corpus.path={memory.notes}"])
    ingest(memory.workspace, config, progress=False)
    names = {d.source for d in read_documents(memory.workspace.documents_path)}
    assert names == {"clara.md", "kayak.md", "garden.md"}
    units = {unit.id for unit in read_text_units(memory.workspace.text_units_path)}
    assert not units & miso


def test_texts_ragtune_wrote_into_the_workspace_lose_the_document(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """A memory built from texts (`ingest_texts`, as the LangChain and LlamaIndex integrations
    do) holds them in `corpus/texts.jsonl`: forgetting blanks the document's line, and giving
    the texts again does not bring it back."""
    from ragtune.corpus.jsonl import SourceText

    texts = [SourceText(text, {"title": name}) for name, text in {**FIRST, **ADDED}.items()]
    settings = [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]
    root = ingest_texts(texts, tmp_path / "memory", settings)
    workspace = Workspace.at(root)
    corpus = root / "corpus" / "texts.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    miso = next(d for d in read_documents(workspace.documents_path) if d.title == "miso.md")

    report = forget(
        workspace, load_config(workspace.config_path), documents=[miso.id], progress=False
    )

    assert report.leftovers == []
    assert corpus.read_text(encoding="utf-8").splitlines() == [
        "" if "Miso" in line else line for line in lines
    ]
    kept = {d.id for d in read_documents(workspace.documents_path)}
    ingest_texts(texts, root, settings)  # the same texts again
    assert {d.id for d in read_documents(workspace.documents_path)} == kept
    assert holders(root, TRACES["miso.md"]) == {}


# --- the cache ----------------------------------------------------------------------------------


def test_purged_responses_leave_no_bytes_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    """Deleted while another connection holds the file open in WAL mode (a server sharing the
    cache): the text is gone from the database, its WAL and its shared memory."""
    workspace = Workspace.at(tmp_path / "memory", create=True)
    calls: list[str] = []
    holder = cached(workspace, calls)
    for question in ANSWERS:
        ask(holder, question)
    path = workspace.llm_cache_path
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    secret = "animal shelter in Braga"
    assert any(secret.encode() in p.read_bytes() for p in files if p.is_file())

    deleted = purge_responses(path, ["Miso was adopted from the animal shelter in Braga"])

    assert deleted == 1
    for p in files:
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p.name
    holder.close()
    assert secret.encode() not in path.read_bytes()
    rows = sqlite3.connect(path).execute("SELECT request FROM responses").fetchall()
    assert len(rows) == 2
    assert purge_responses(path, ["nothing cached says this"]) == 0
    assert purge_responses(tmp_path / "absent.sqlite", ["Miso"]) == 0


# --- errors and the command ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("documents", "doc-0000000000000000", "has no document 'doc-0000000000000000'"),
        ("sources", "notes/miso.md", "has no document from 'notes/miso.md'"),
    ],
)
def test_an_unknown_document_is_one_clear_error_and_changes_nothing(
    memory: Memory, option: str, value: str, words: str
) -> None:
    before = {p: p.read_bytes() for p in memory.workspace.root.rglob("*") if p.is_file()}

    with pytest.raises(RagtuneError) as raised:
        forget(memory.workspace, memory.config, **{option: [value]}, progress=False)

    message = str(raised.value)
    assert words in message
    assert "documents.parquet" in message
    assert {p: p.read_bytes() for p in memory.workspace.root.rglob("*") if p.is_file()} == before


def test_naming_no_document_or_every_document_is_an_error(memory: Memory) -> None:
    with pytest.raises(RagtuneError, match="name the documents to forget"):
        forget(memory.workspace, memory.config, progress=False)
    every = [d.id for d in read_documents(memory.workspace.documents_path)]
    with pytest.raises(RagtuneError, match="would have no document left"):
        forget(memory.workspace, memory.config, documents=every, progress=False)
    assert len(read_documents(memory.workspace.documents_path)) == 4


def test_the_command_forgets_and_prints_what_it_did(memory: Memory) -> None:
    root = memory.workspace.root

    run = run_ragtune("forget", root, "--source", "miso.md", "--no-retrain")

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("forgot 1 documents: 1 text units, ")
    assert " training records retired, entities " in lines[0]
    assert "2 cached teacher" not in lines[0]  # (this copy's cache is empty)
    assert lines[1].startswith("adapter: v2 left as it is, and its weights saw them")
    assert lines[-1] == "checked: no file of the workspace holds the removed text"
    assert "miso.md" not in {d.source for d in read_documents(memory.workspace.documents_path)}


def test_the_command_reports_bad_input(memory: Memory) -> None:
    root = memory.workspace.root

    unnamed = run_ragtune("forget", root)
    unknown = run_ragtune("forget", root, "--document", "doc-nope")
    missing = run_ragtune("forget", root, "--source", "nowhere.md")

    assert unnamed.returncode == 2
    assert "name the documents to forget: --document ID or --source PATH" in unnamed.stderr
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        f"error: {memory.workspace.documents_path}: has no document 'doc-nope' (ids are in "
        "documents.parquet, column id)"
    ]
    assert missing.returncode == 1
    assert "has no document from 'nowhere.md'" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr


def test_leftovers_fail_the_command(memory: Memory) -> None:
    """Text the scan still finds (an evaluation report quoting the note) is named, and the
    command fails."""
    report_file = memory.workspace.root / "runs" / "eval" / "answers.json"
    report_file.parent.mkdir(parents=True)
    report_file.write_text(json.dumps({"context": ADDED["miso.md"]}), encoding="utf-8")

    run = run_ragtune("forget", memory.workspace.root, "--source", "miso.md", "--no-retrain")

    assert run.returncode == 1
    assert "the removed text is still in: runs/eval/answers.json" in run.stdout
    assert "the removed text is still in the files named above" in run.stderr


def test_report_lines_name_the_deleted_versions() -> None:
    report = ForgetReport(["doc-1"], removed_versions=[1, 2], adapter="v3: trained")

    assert "deleted adapter versions that saw them: v1, v2" in report.summary_lines()
