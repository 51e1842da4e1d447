"""Atomic writes: a file or folder appears complete under its final name, or not at all."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragtune.fileio import atomic_directory, atomic_path, atomic_write_text


class BoomError(Exception):
    """Raised inside a block to simulate a failed write."""


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- atomic_path / atomic_write_text ----------------------------------------------------------


def test_atomic_write_text_creates_the_file_and_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "memory.yaml"

    atomic_write_text(target, "model: embedded\ncafé\n")

    assert target.read_text(encoding="utf-8") == "model: embedded\ncafé\n"
    assert names(target.parent) == ["memory.yaml"]


def test_atomic_write_text_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")

    atomic_write_text(target, "new")

    assert target.read_text(encoding="utf-8") == "new"
    assert names(tmp_path) == ["f.txt"]


def test_atomic_path_yields_a_temp_file_next_to_the_target(tmp_path: Path) -> None:
    target = tmp_path / "table.parquet"

    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        assert not target.exists()
        tmp.write_bytes(b"data")

    assert target.read_bytes() == b"data"
    assert not tmp.exists()


def test_exception_in_block_keeps_the_old_content_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "table.parquet"
    target.write_bytes(b"old table")

    with pytest.raises(BoomError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a new tab")
        raise BoomError

    assert target.read_bytes() == b"old table"
    assert names(tmp_path) == ["table.parquet"]


def test_exception_in_block_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "table.parquet"

    with pytest.raises(BoomError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise BoomError

    assert names(tmp_path) == []


def test_atomic_write_text_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "memory.yaml"
    target.write_text("model: embedded\n", encoding="utf-8")

    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "model: \ud800 (a lone surrogate cannot be encoded)\n")

    assert target.read_text(encoding="utf-8") == "model: embedded\n"
    assert names(tmp_path) == ["memory.yaml"]


@pytest.mark.usefixtures("umask_022")
def test_file_mode_follows_the_umask_022(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"

    atomic_write_text(target, "x")

    assert mode(target) == 0o644  # not mkstemp's 0600


@pytest.mark.usefixtures("umask_027")
def test_file_mode_follows_the_umask_027(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"

    atomic_write_text(target, "x")

    assert mode(target) == 0o640


@pytest.mark.usefixtures("umask_022")
def test_owner_only_files_in_an_atomic_directory_get_the_usual_mode(tmp_path: Path) -> None:
    target = tmp_path / "adapters" / "default"

    with atomic_directory(target) as folder:
        weights = folder / "adapter_model.safetensors"
        weights.write_bytes(b"weights")
        weights.chmod(0o600)  # as a library's own atomic save leaves it
        (folder / "private.key").write_bytes(b"k")
        (folder / "private.key").chmod(0o640)

    assert mode(target / "adapter_model.safetensors") == 0o644
    assert mode(target / "private.key") == 0o640  # a mode someone chose is kept


@pytest.mark.usefixtures("umask_022")
def test_umask_is_left_unchanged(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "f.txt", "x")

    assert os.umask(0o022) == 0o022


# --- atomic_directory -------------------------------------------------------------------------


def test_atomic_directory_completes_to_the_target(tmp_path: Path) -> None:
    target = tmp_path / "index" / "model"

    with atomic_directory(target) as tmp:
        assert tmp.parent == target.parent
        assert not target.exists()
        (tmp / "weights.bin").write_bytes(b"w")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "config.json").write_text("{}", encoding="utf-8")

    assert (target / "weights.bin").read_bytes() == b"w"
    assert (target / "sub" / "config.json").read_text(encoding="utf-8") == "{}"
    assert names(target.parent) == ["model"]


def test_atomic_directory_exception_leaves_no_target_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "model"

    with pytest.raises(BoomError), atomic_directory(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"partial")
        raise BoomError

    assert not target.exists()
    assert names(tmp_path) == []


def test_atomic_directory_keeps_an_existing_target_from_another_writer(tmp_path: Path) -> None:
    target = tmp_path / "model"

    with atomic_directory(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"ours")
        # Another process finishes first.
        target.mkdir()
        (target / "weights.bin").write_bytes(b"theirs")

    assert (target / "weights.bin").read_bytes() == b"theirs"
    assert names(tmp_path) == ["model"]


def test_atomic_directory_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_bytes(b"a file, not a folder")

    with pytest.raises(OSError), atomic_directory(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"ours")

    assert target.read_bytes() == b"a file, not a folder"
    assert names(tmp_path) == ["model"]


@pytest.mark.usefixtures("umask_022")
def test_atomic_directory_mode_follows_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "model"

    with atomic_directory(target) as tmp:
        (tmp / "f").write_bytes(b"")

    assert mode(target) == 0o755  # not mkdtemp's 0700
