"""`ragtune index` end to end, with no model calls: in-process with click's `CliRunner`
(`run_ragtune`), except the test marked `subprocess`, which runs the installed console script to
prove a user error's exit status and lone error line in a real process.

Every run sets the chunking tokenizer and the model to the tiny test model, so no test loads
the embedded one; the teacher stays `embedded`, so `auto` picks the heuristic extractor.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from support import Run, error_line, run_console_script, run_ragtune, visible_lines
from test_index_graphrag import write_graphrag_2x

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"
SUMMARY = re.compile(
    r"^indexed (?P<units>\d+) text units \((?P<extracted>\d+) extracted now, "
    r"(?P<failed>\d+) failed\) with the (?P<extractor>\w+) extractor: "
    r"(?P<entities>\d+) entities, (?P<relationships>\d+) relationships, "
    r"(?P<communities>\d+) communities \(per level (?P<levels>\d+(?:/\d+)*)\), "
    r"(?P<reports>\d+) reports \((?P<written>\d+) written, (?P<unchanged>\d+) unchanged\); "
    r"teacher calls (?P<calls>\d+), cache hits (?P<hits>\d+); "
    r"(?P<seconds>\d+\.\d) s$"
)
TABLES = ("entities", "relationships", "communities", "community_reports")


def summary_of(run: Run) -> re.Match[str]:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    [line] = run.stdout.splitlines()
    match = SUMMARY.match(line)
    assert match, line
    return match


def rows(workspace: Path, table: str) -> int:
    return int(pq.read_metadata(workspace / f"{table}.parquet").num_rows)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> list[str]:
    """Overrides that put the tiny test model everywhere a model is loaded."""
    return [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]


# --- good paths -------------------------------------------------------------------------------


def test_index_help() -> None:
    result = run_ragtune("index", "--help")

    assert result.returncode == 0, result.stderr
    for words in ("WORKSPACE", "--corpus", "--teacher", "--extractor", "--from-graphrag"):
        assert words in result.stdout


def test_index_sample_corpus_prints_summary_and_writes_tables(
    tmp_path: Path, tiny: list[str]
) -> None:
    workspace = tmp_path / "memory"

    result = run_ragtune("index", workspace, "--corpus", SAMPLE_CORPUS, *tiny)

    summary = summary_of(result)
    units = rows(workspace, "text_units")
    assert int(summary["units"]) == int(summary["extracted"]) == units > 0
    assert summary["failed"] == "0"
    assert summary["extractor"] == "heuristic"
    assert int(summary["entities"]) == rows(workspace, "entities") > 0
    assert int(summary["relationships"]) == rows(workspace, "relationships") > 0
    assert int(summary["communities"]) == rows(workspace, "communities") > 0
    assert int(summary["reports"]) == rows(workspace, "community_reports")
    levels = pq.read_table(workspace / "communities.parquet", columns=["level"])
    per_level = levels.column("level").value_counts().to_pylist()
    assert summary["levels"] == "/".join(
        str(item["counts"]) for item in sorted(per_level, key=lambda item: item["values"])
    )
    assert summary["calls"] == "0"
    assert summary["hits"] == "0"
    assert float(summary["seconds"]) < 60
    for table in TABLES:
        assert (workspace / f"{table}.parquet").is_file()
    saved = json.loads((workspace / "index.json").read_text(encoding="utf-8"))
    assert saved["text_units"] == units
    assert saved["entities"] == int(summary["entities"])
    assert saved["relationships"] == int(summary["relationships"])
    assert saved["extractor"] == "heuristic"
    assert saved["teacher_calls"] == 0
    assert saved["failures"] == []
    assert not (workspace / "cache" / "llm.sqlite").exists()  # no teacher was loaded


def test_memory_yaml_records_corpus_and_index_settings(
    tmp_path: Path, tiny: list[str], tiny_model_dir: Path
) -> None:
    workspace = tmp_path / "memory"

    result = run_ragtune(
        "index", workspace, "--corpus", SAMPLE_CORPUS, *tiny, "index.max_cluster_size=5",
        "index.max_description_chars=300",
    )  # fmt: skip

    summary_of(result)
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"] == {"path": str(SAMPLE_CORPUS), "format": "auto"}
    assert saved["model"] == f"hf:{tiny_model_dir}"
    assert saved["chunking"]["tokenizer"] == f"hf:{tiny_model_dir}"
    assert saved["index"]["max_cluster_size"] == 5
    assert saved["index"]["max_description_chars"] == 300
    assert saved["index"]["extractor"] == "auto"
    assert saved["teacher"] == "embedded"
    descriptions = pq.read_table(workspace / "entities.parquet", columns=["description"])
    assert max(len(d) for d in descriptions.column("description").to_pylist()) <= 300


def test_second_run_extracts_nothing_and_gives_the_same_tables(
    tmp_path: Path, tiny: list[str]
) -> None:
    workspace = tmp_path / "memory"
    first = summary_of(run_ragtune("index", workspace, "--corpus", SAMPLE_CORPUS, *tiny))
    tables = {t: pq.read_table(workspace / f"{t}.parquet") for t in ("entities", "relationships")}

    # No --corpus and no overrides: memory.yaml supplies them.
    second = summary_of(run_ragtune("index", workspace))

    assert second["extracted"] == "0"
    assert "(0 extracted now, 0 failed)" in second.group(0)
    for key in ("units", "entities", "relationships", "communities", "levels", "reports"):
        assert second[key] == first[key]
    for table, before in tables.items():
        assert pq.read_table(workspace / f"{table}.parquet").equals(before)


def test_new_note_is_the_only_unit_extracted(tmp_path: Path, tiny: list[str]) -> None:
    corpus = tmp_path / "notes"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    workspace = tmp_path / "memory"
    first = summary_of(run_ragtune("index", workspace, "--corpus", corpus, *tiny))
    (corpus / "notes" / "2024-10-01-new.md").write_text(
        "---\ndate: 2024-10-01\n---\nToday Rui Matos moved the kayak club to Algés.\n",
        encoding="utf-8",
    )

    second = summary_of(run_ragtune("index", workspace))

    assert int(second["units"]) == int(first["units"]) + 1
    assert second["extracted"] == "1"


def test_explicit_heuristic_extractor_with_a_non_embedded_teacher(
    tmp_path: Path, tiny: list[str]
) -> None:
    workspace = tmp_path / "memory"
    teacher = "openai:some-model@http://127.0.0.1:9/v1"  # nothing listens there

    result = run_ragtune(
        "index", workspace, "--corpus", SAMPLE_CORPUS, *tiny, "--teacher", teacher,
        "--extractor", "heuristic",
    )  # fmt: skip

    summary = summary_of(result)
    assert summary["extractor"] == "heuristic"
    assert summary["calls"] == "0"
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["index"]["extractor"] == "heuristic"
    assert saved["teacher"] == teacher
    assert not (workspace / "cache" / "llm.sqlite").exists()


def test_relative_corpus_is_recorded_absolute(tmp_path: Path, tiny: list[str]) -> None:
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "notes")
    first = summary_of(run_ragtune("index", "memory", "--corpus", "notes", *tiny, cwd=tmp_path))
    (tmp_path / "notes" / "new.md").write_text("A note added later.", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    second = run_ragtune("index", tmp_path / "memory", cwd=elsewhere)

    saved = yaml.safe_load((tmp_path / "memory" / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"]["path"] == str((tmp_path / "notes").resolve())
    assert int(summary_of(second)["units"]) == int(first["units"]) + 1


# --- GraphRAG output --------------------------------------------------------------------------


def test_from_graphrag_adopts_a_graphrag_2x_folder(tmp_path: Path) -> None:
    output = write_graphrag_2x(tmp_path / "graphrag" / "output")
    workspace = tmp_path / "memory"

    result = run_ragtune("index", workspace, "--from-graphrag", output)

    summary = summary_of(result)
    assert "with the graphrag extractor" in result.stdout
    assert summary["extractor"] == "graphrag"
    assert (summary["units"], summary["extracted"], summary["failed"]) == ("4", "0", "0")
    assert (summary["entities"], summary["relationships"]) == ("5", "4")
    assert (summary["communities"], summary["levels"], summary["reports"]) == ("4", "2/2", "4")
    assert summary["calls"] == "0"
    for table in (*TABLES, "documents", "text_units"):
        assert (workspace / f"{table}.parquet").is_file()
    saved = json.loads((workspace / "index.json").read_text(encoding="utf-8"))
    assert saved["extractor"] == "graphrag"
    assert saved["entities"] == 5


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_workspace_without_corpus_or_text_units_is_one_error_line(tmp_path: Path) -> None:
    # In a real process: exit status 1 and one line on stderr, nothing else written there.
    workspace = tmp_path / "memory"

    result = run_console_script("index", workspace)

    line = error_line(result)
    assert str(workspace / "text_units.parquet") in line
    assert "ragtune ingest" in line
    assert result.stdout == ""
    for table in TABLES:
        assert not (workspace / f"{table}.parquet").exists()


def test_from_graphrag_with_a_folder_that_is_not_graphrag_output(tmp_path: Path) -> None:
    folder = tmp_path / "not-graphrag"
    folder.mkdir()
    (folder / "notes.txt").write_text("just notes", encoding="utf-8")
    workspace = tmp_path / "memory"

    result = run_ragtune("index", workspace, "--from-graphrag", folder)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = visible_lines(result.stderr)
    assert line.startswith("error: ")
    assert "not a GraphRAG output folder" in line
    assert str(folder) in line
    assert result.stdout == ""
    for table in TABLES:
        assert not (workspace / f"{table}.parquet").exists()
