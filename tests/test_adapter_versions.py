"""Adapter versions (`ragtune.adapters`): every training run writes `adapters/.versions/<name>/vN`
and the adapter's name is a relative link switched to it in one rename.

`AdapterVersions` on hand-made version folders (a manifest and a small safetensors file, no
training): switching, copies of a workspace with and without its links, adapters from before
versions, a switch cut short, refusing mixed-up folders, pruning and lineage; and the
`ragtune adapters` commands and `ragtune train --from` checks on them. Training runs that write
and continue versions are in `test_train_update.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ragtune.adapters import VERSIONS, AdapterVersions
from ragtune.errors import RagtuneError
from ragtune.manifest import MANIFEST
from ragtune.stages import workspace_lock
from ragtune.workspace import Workspace
from support import run_ragtune
from train_support import WEIGHTS, names_in, write_version

# -- hand-made versions -----------------------------------------------------------------------


def weight_value(folder: Path) -> float:
    """The value the tensor of a hand-made version is filled with."""
    return float(load_file(str(folder / WEIGHTS))["lora_B"][0, 0])


def versions_at(root: Path, *parents: int | None) -> AdapterVersions:
    """A workspace with versions v1, v2, ... (version i+1 with parent `parents[i]`), none
    current yet."""
    workspace = Workspace.at(root, create=True)
    versions = AdapterVersions(workspace)
    for index, parent in enumerate(parents):
        write_version(versions.folder(index + 1), index + 1, parent=parent)
    return versions


@pytest.fixture
def two(tmp_path: Path) -> AdapterVersions:
    """v1 and v2 (an update of v1), v2 current."""
    versions = versions_at(tmp_path / "memory", None, 1)
    versions.use(2)
    return versions


def test_use_points_the_name_at_a_version_through_a_relative_link(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1)
    assert versions.current() is None
    assert versions.numbers() == [1, 2]
    assert versions.next_number() == 3

    versions.use(1)

    assert versions.current() == 1
    assert versions.link.is_symlink()
    assert versions.link.readlink() == Path(VERSIONS) / "default" / "v1"  # relative
    assert weight_value(versions.link) == 1.0
    assert (versions.root / "current").read_text(encoding="utf-8") == "v1\n"

    versions.use(2)

    assert versions.current() == 2
    assert weight_value(versions.link) == 2.0
    assert [(v.number, v.label, v.current, v.manifest.parent) for v in versions.all()] == [
        (1, "v1", False, None),
        (2, "v2", True, 1),
    ]
    assert [v.folder for v in versions.all()] == [versions.folder(1), versions.folder(2)]
    assert versions.get(1).manifest.added == {"records": 10, "replayed": 1}
    assert versions.next_number() == 3
    assert names_in(versions.workspace.adapters_dir) == [VERSIONS, "default"]
    assert names_in(versions.root) == ["current", "v1", "v2"]


def test_a_missing_version_is_refused_naming_those_there(two: AdapterVersions) -> None:
    with pytest.raises(RagtuneError) as raised:
        two.use(7)

    assert "has no version v7 (versions: v1, v2)" in str(raised.value)
    assert two.current() == 2


def test_a_workspace_copied_with_its_links_keeps_its_versions(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=True)
    shutil.rmtree(two.workspace.root)  # the copy's link must not lead back here

    versions = AdapterVersions(Workspace.at(copy))

    assert versions.link.is_symlink() and versions.current() == 2
    assert versions.link.resolve() == versions.folder(2).resolve()
    assert weight_value(versions.link) == 2.0
    versions.use(1)
    assert weight_value(versions.link) == 1.0


def test_a_workspace_copied_without_links_is_the_version_its_manifest_names(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))
    assert versions.link.is_dir() and not versions.link.is_symlink()  # the link became a folder

    assert versions.current() == 2
    assert versions.numbers() == [1, 2]
    assert [(v.number, v.current) for v in versions.all()] == [(1, False), (2, True)]
    assert versions.get(2).folder == versions.link
    assert versions.repair() == []  # nothing to finish: the folder is v2, as recorded

    versions.use(1)  # the folder is dropped for a link (v2 is there with the same weights)

    assert versions.link.is_symlink() and versions.current() == 1
    assert weight_value(versions.link) == 1.0
    assert names_in(versions.workspace.adapters_dir) == [VERSIONS, "default"]
    assert names_in(versions.root) == ["current", "v1", "v2"]
    assert weight_value(versions.folder(2)) == 2.0
    versions.use(2)
    assert weight_value(versions.link) == 2.0


def test_a_copied_folder_is_migrated_when_its_own_version_is_used(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))

    versions.use(2)

    assert versions.link.is_symlink() and versions.current() == 2
    assert versions.link.resolve() == versions.folder(2).resolve()


def test_a_copied_folder_with_other_weights_than_its_version_is_refused(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))
    save_file({"lora_B": torch.full((2, 2), 9.0)}, str(versions.link / WEIGHTS))

    with pytest.raises(RagtuneError, match="other weights under that number"):
        versions.use(1)

    assert not versions.link.is_symlink() and weight_value(versions.link) == 9.0
    assert weight_value(versions.folder(2)) == 2.0


def test_a_folder_from_before_versions_becomes_version_1_on_first_use(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    versions = AdapterVersions(workspace)
    write_version(versions.link, None, value=5.0)

    assert versions.numbers() == [1]
    assert versions.current() == 1
    assert versions.next_number() == 2
    [legacy] = versions.all()
    assert legacy.folder == versions.link and legacy.manifest.version == 1 and legacy.current
    assert legacy.manifest.parent is None and legacy.manifest.added == {}

    versions.use(1)

    assert versions.link.is_symlink()
    assert versions.link.readlink() == Path(VERSIONS) / "default" / "v1"
    assert weight_value(versions.folder(1)) == 5.0
    assert (versions.folder(1) / MANIFEST).is_file()
    assert names_in(workspace.adapters_dir) == [VERSIONS, "default"]

    write_version(versions.folder(2), 2, parent=1)
    versions.use(2)
    assert weight_value(versions.link) == 2.0
    versions.use(1)
    assert weight_value(versions.link) == 5.0


def test_a_new_version_beside_a_folder_from_before_versions_moves_it_to_v1(
    tmp_path: Path,
) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    versions = AdapterVersions(workspace)
    write_version(versions.link, None, value=5.0)
    write_version(versions.folder(versions.next_number()), 2)

    versions.use(2)  # what training does after writing v2

    assert versions.current() == 2 and versions.numbers() == [1, 2]
    assert weight_value(versions.folder(1)) == 5.0


def test_repair_finishes_a_switch_cut_after_its_record(two: AdapterVersions) -> None:
    two.use(1)
    (two.root / "current").write_text("v2\n", encoding="utf-8")  # recorded, not switched
    leftovers = [two.root / ".v3.x1y2.tmp", two.root / ".current.a1b2.tmp"]
    leftovers[0].mkdir()
    leftovers[1].write_text("v", encoding="utf-8")
    assert two.current() == 1

    done = two.repair()

    assert two.current() == 2 and weight_value(two.link) == 2.0
    assert "adapter 'default' switched to v2 (a switch was cut short)" in done
    assert sorted(line for line in done if line.startswith("removed")) == [
        "removed adapters/.versions/default/.current.a1b2.tmp",
        "removed adapters/.versions/default/.v3.x1y2.tmp",
    ]
    assert not any(path.exists() for path in leftovers)
    assert two.repair() == []


def test_a_switch_killed_after_its_record_is_finished_by_repair(two: AdapterVersions) -> None:
    two.use(1)
    code = (
        "import sys\n"
        "from ragtune.adapters import AdapterVersions\n"
        "from ragtune.workspace import Workspace\n"
        "AdapterVersions(Workspace.at(sys.argv[1])).use(2)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code, str(two.workspace.root)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "RAGTUNE_TEST_KILL_AT": "adapters:recorded",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr

    assert two.current() == 1  # the link was not switched
    assert (two.root / "current").read_text(encoding="utf-8") == "v2\n"
    two.repair()
    assert two.current() == 2 and weight_value(two.link) == 2.0


def test_repair_leaves_the_temporary_files_of_a_writer_holding_the_lock(
    two: AdapterVersions,
) -> None:
    # A loader repairs without the workspace lock: while a writer (a training run) holds it,
    # the `.vN.*.tmp` folder it is writing, or the `.vN.removing.old` it is deleting, is not
    # a leftover. A cut switch is still finished.
    two.use(1)
    (two.root / "current").write_text("v2\n", encoding="utf-8")
    writing = two.root / ".v3.x1y2.tmp"
    writing.mkdir()
    with workspace_lock(two.workspace):
        done = two.repair()
        assert writing.is_dir()
        assert two.current() == 2
        assert two.repair(locked=True) == ["removed adapters/.versions/default/.v3.x1y2.tmp"]
        assert not writing.exists()
    assert done == ["adapter 'default' switched to v2 (a switch was cut short)"]
    writing.mkdir()
    assert two.repair() == ["removed adapters/.versions/default/.v3.x1y2.tmp"]


def test_a_folder_holding_another_version_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 2, parent=1)  # v3's folder holds a v2

    with pytest.raises(RagtuneError) as raised:
        two.use(3)

    message = str(raised.value)
    assert message.startswith(str(two.folder(3) / MANIFEST))
    assert "holds adapter 'default' version v2, not 'default' v3" in message
    assert "mixed up" in message
    assert two.current() == 2


def test_a_folder_of_another_adapter_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 3, adapter="other")

    with pytest.raises(RagtuneError, match="holds adapter 'other' version v3, not 'default' v3"):
        two.get(3)


def test_a_version_without_weights_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 3, weights=False)

    with pytest.raises(RagtuneError) as raised:
        two.use(3)

    assert str(raised.value) == (
        f"{two.folder(3)}: version v3 has no weights (*.safetensors); train again"
    )
    assert two.current() == 2


def test_prune_keeps_the_newest_versions_and_the_current_one(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1, 2, 3, 4)
    versions.use(2)

    assert versions.prune(0) == []
    assert versions.prune(5) == []
    assert versions.prune(2) == [1, 3]  # v2 is older than the newest two, but current

    assert versions.numbers() == [2, 4, 5]
    assert versions.current() == 2 and weight_value(versions.link) == 2.0
    assert names_in(versions.root) == ["current", "v2", "v4", "v5"]
    assert versions.remove([2, 9]) == []
    versions.use(5)
    assert versions.prune(1) == [2, 4]
    assert versions.numbers() == [5]


def test_lineage_follows_the_parents_still_on_disk(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1, 2, 1)
    versions.use(4)

    assert [v.number for v in versions.lineage(3)] == [3, 2, 1]
    assert [v.number for v in versions.lineage(4)] == [4, 1]
    assert [v.number for v in versions.lineage(1)] == [1]
    assert versions.lineage(9) == []

    assert versions.remove([2]) == [2]
    assert [v.number for v in versions.lineage(3)] == [3]


# -- the CLI on hand-made versions ------------------------------------------------------------


def test_adapters_list_shows_the_versions_and_marks_the_current_one(
    two: AdapterVersions,
) -> None:
    run = run_ragtune("adapters", "list", two.workspace.root)

    assert run.returncode == 0, run.stderr
    header, first, second = run.stdout.splitlines()
    assert header.split() == [
        "version",
        "parent",
        "created",
        "records",
        "replayed",
        "steps",
        "val",
        "loss",
    ]
    assert first.startswith("   v1 ") and first.split() == [
        "v1",
        "-",
        "2026-01-01T00:00:00+00:00",
        "10",
        "1",
        "2",
        "1.250",
    ]
    assert second.startswith("*  v2 ") and second.split()[1:] == [
        "v2",
        "v1",
        "2026-01-02T00:00:00+00:00",
        "20",
        "2",
        "2",
        "2.500",
    ]


def test_adapters_list_without_an_adapter_says_so(tmp_path: Path) -> None:
    Workspace.at(tmp_path / "memory", create=True)

    run = run_ragtune("adapters", "list", tmp_path / "memory")

    assert run.returncode == 1
    assert "has no adapter 'default'; run `ragtune train`" in run.stderr


@pytest.mark.parametrize("version", ["v1", "1"])
def test_adapters_use_switches_the_link(two: AdapterVersions, version: str) -> None:
    run = run_ragtune("adapters", "use", two.workspace.root, version)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("v2 → v1")
    assert two.current() == 1
    assert two.link.resolve() == two.folder(1).resolve()


def test_adapters_use_refuses_what_is_not_a_version(two: AdapterVersions) -> None:
    bad = run_ragtune("adapters", "use", two.workspace.root, "latest")
    missing = run_ragtune("adapters", "use", two.workspace.root, "v3")

    assert bad.returncode == 2 and "'latest' is not a version" in bad.stderr
    assert missing.returncode == 1 and "has no version v3 (versions: v1, v2)" in missing.stderr
    assert two.current() == 2


def test_train_from_without_update_is_a_usage_error(two: AdapterVersions) -> None:
    run = run_ragtune("train", two.workspace.root, "--from", "v1")

    assert run.returncode == 2
    assert "--from needs --update" in run.stderr


def test_train_from_a_malformed_version_is_a_usage_error(two: AdapterVersions) -> None:
    run = run_ragtune("train", two.workspace.root, "--update", "--from", "one")

    assert run.returncode == 2
    assert "Invalid value for '--from': 'one' is not a version" in run.stderr
