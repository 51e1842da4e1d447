"""Stages commit as a set: a reader sees all of a stage's old files or all of its new ones.

A stage (`ingest`, `index`, `synthesize`, `train`) runs inside `stage(workspace, name)`. While
it runs, every atomic write (`ragtune.fileio.atomic_path`) to one of the stage's outputs lands
in a staging folder (`.staging-<stage>/`) instead of the workspace. When the stage succeeds,
a commit record (`.commit-<stage>.json`) names the staged files, they are renamed into place
and the record is removed; `stages.json` (written in the same commit) records the stage's
generation: an id and the size and SHA-256 of each file it owns. When the stage fails, the
staging folder is dropped and the workspace is as it was (settings given on the command line
included: `memory.yaml` is one of the outputs).

A run killed while publishing leaves its commit record; the next stage that opens the
workspace finishes the publication (roll forward) before it reads anything, removes staging
folders that never got a record (roll back) and the temporary files of killed atomic writes.
One stage writes a workspace at a time (an advisory lock on the workspace folder); each stage
checks that the files of the stages it reads are the ones those stages committed.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from ragtune.errors import RagtuneError
from ragtune.workspace import Workspace

StageName = Literal["ingest", "index", "synthesize", "train"]

#: The file (under the workspace) that records each stage's committed generation.
STAGES_FILE = "stages.json"

#: What each stage reads: the stages whose committed files it checks before it starts.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "index": ("ingest",),
    "synthesize": ("ingest", "index"),
    "train": ("synthesize",),
}

# Names of the temporary files and folders of `ragtune.fileio`'s atomic writes.
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)$")
# Folders (under the workspace) where stages make such temporaries.
_LEFTOVER_FOLDERS = ("", "synth", "adapters", "cache")


def owned_files(workspace: Workspace) -> dict[str, list[Path]]:
    """The files each stage owns (its generation is recorded over them)."""
    return {
        "ingest": [
            workspace.documents_path,
            workspace.text_units_path,
            workspace.forgotten_path,
        ],
        "index": [
            workspace.entities_path,
            workspace.relationships_path,
            workspace.communities_path,
            workspace.community_reports_path,
            workspace.index_summary_path,
        ],
        "synthesize": [
            workspace.train_path,
            workspace.val_path,
            workspace.card_path,
            workspace.synth_state_path,
        ],
        "train": [],
    }


def stage_outputs(workspace: Workspace, name: str) -> list[Path]:
    """The files stage `name` may write: its own, `memory.yaml`, and for `index` the ingest
    tables too (adopting a GraphRAG index brings its documents and text units)."""
    owned = owned_files(workspace)
    extra = owned["ingest"] if name == "index" else []
    return [*owned[name], *extra, workspace.config_path]


@dataclass
class _Staging:
    """The staged writes of one running stage."""

    workspace: Workspace
    name: str
    folder: Path
    outputs: dict[Path, Path]
    written: dict[Path, Path] = field(default_factory=dict)

    def redirect(self, target: Path) -> Path | None:
        """Where an atomic write to `target` goes: a path in the staging folder when `target`
        is one of the stage's outputs, else None."""
        staged = self.outputs.get(_absolute(target))
        if staged is None:
            return None
        kill_point(f"{self.name}:write:{target.name}")
        staged.parent.mkdir(parents=True, exist_ok=True)
        self.written[_absolute(target)] = staged
        return staged


_ACTIVE: contextvars.ContextVar[_Staging | None] = contextvars.ContextVar(
    "ragtune_stage", default=None
)


def staged_target(target: Path) -> Path | None:
    """Where an atomic write to `target` must go while a stage runs (None: to `target`)."""
    active = _ACTIVE.get()
    return active.redirect(target) if active is not None else None


def note_direct_write(target: Path) -> None:
    """Record in `stages.json` that ragtune's own writer replaced the stage file `target`
    outside a stage (the Python API writing a table itself): the file is then the stage's, as
    written. Files changed by anything else still fail `check_generation`."""
    target = _absolute(target)
    for root in (target.parent, target.parent.parent):
        record = root / STAGES_FILE
        if not record.is_file():
            continue
        relative = target.relative_to(root).as_posix()
        try:
            stages = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        changed = False
        for entry in stages.values() if isinstance(stages, dict) else ():
            files = entry.get("files") if isinstance(entry, dict) else None
            if isinstance(files, dict) and relative in files:
                files[relative] = _fingerprint(target)
                changed = True
        if changed:
            temporary = record.with_name(f".{record.name}.{secrets.token_hex(4)}.tmp")
            temporary.write_text(json.dumps(stages, indent=2) + "\n", encoding="utf-8")
            temporary.replace(record)
        return


@contextlib.contextmanager
def stage(workspace: Workspace, name: StageName, *, check_inputs: bool = True) -> Iterator[None]:
    """Run stage `name` of `workspace` so that its outputs are published together or not at
    all (see the module's docstring). A stage opened inside another of the same workspace
    joins it.

    Raises:
        RagtuneError: another ragtune command is writing the workspace, or the files of a
            stage this one reads are not those that stage committed.
    """
    workspace = Workspace(_absolute(workspace.root))
    active = _ACTIVE.get()
    if os.environ.get("RANK", "0") != "0":
        yield  # a distributed run's other processes: the main one commits
        return
    if active is not None and active.workspace.root == workspace.root:
        if active.name != name:
            raise RuntimeError(f"stage {name!r} opened inside stage {active.name!r}")
        yield
        return
    with workspace_lock(workspace):
        recover(workspace)
        if check_inputs:
            for needed in STAGE_INPUTS[name]:
                check_generation(workspace, needed)
        folder = workspace.root / f".staging-{name}"
        outputs = {
            _absolute(path): folder / path.relative_to(workspace.root)
            for path in stage_outputs(workspace, name)
        }
        staging = _Staging(workspace, name, folder, outputs)
        folder.mkdir()
        token = _ACTIVE.set(staging)
        try:
            yield
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            _ACTIVE.reset(token)
        _commit(staging)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def runs_as_stage(
    name: StageName,
) -> Callable[[Callable[Concatenate[Workspace, _P], _R]], Callable[Concatenate[Workspace, _P], _R]]:
    """Decorate a function whose first argument is the workspace so that it runs as stage
    `name` (`stage`)."""

    def decorate(
        function: Callable[Concatenate[Workspace, _P], _R],
    ) -> Callable[Concatenate[Workspace, _P], _R]:
        @functools.wraps(function)
        def run(workspace: Workspace, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with stage(workspace, name):
                return function(workspace, *args, **kwargs)

        return run

    return decorate


def _commit(staging: _Staging) -> None:
    """Record the stage's generation, write the commit record, publish, clean up."""
    workspace = staging.workspace
    stages = read_stages(workspace)
    owners = {
        _absolute(path): owner for owner, paths in owned_files(workspace).items() for path in paths
    }
    generation = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    for owner in sorted({owners[t] for t in staging.written if t in owners} | {staging.name}):
        if owner == "train":
            continue  # an adapter is its own atomic folder with its manifest
        files = {}
        for path in owned_files(workspace)[owner]:
            current = staging.written.get(_absolute(path), path)
            if current.is_file():
                files[path.relative_to(workspace.root).as_posix()] = _fingerprint(current)
        inputs = {
            needed: stages[needed]["generation"]
            for needed in STAGE_INPUTS[owner]
            if needed in stages
        }
        earlier = stages.get(owner, {})
        if earlier.get("files") == files and earlier.get("inputs") == inputs:
            continue  # the same files from the same inputs: the same generation
        stages[owner] = {
            "generation": generation,
            "committed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": files,
            "inputs": inputs,
        }
    stages_staged = staging.folder / STAGES_FILE
    stages_staged.write_text(json.dumps(stages, indent=2) + "\n", encoding="utf-8")
    moves = {
        target.relative_to(workspace.root).as_posix(): staged.relative_to(workspace.root).as_posix()
        for target, staged in staging.written.items()
    }
    moves[STAGES_FILE] = stages_staged.relative_to(workspace.root).as_posix()
    record = workspace.root / f".commit-{staging.name}.json"
    temporary = record.with_name(record.name + ".writing")
    temporary.write_text(json.dumps({"stage": staging.name, "moves": moves}), encoding="utf-8")
    _sync(temporary)
    kill_point(f"{staging.name}:staged")
    temporary.replace(record)  # the commit point
    kill_point(f"{staging.name}:committed")
    _publish(workspace, record)


def _publish(workspace: Workspace, record: Path) -> None:
    """Rename every staged file of the commit record `record` into place (those already moved
    are skipped), then remove the record and the staging folder."""
    moves = json.loads(record.read_text(encoding="utf-8"))["moves"]
    for target, staged in moves.items():
        source = workspace.root / staged
        if source.exists():
            destination = workspace.root / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            source.replace(destination)
            kill_point(f"publish:{target}")
    record.unlink()
    stage_name = record.name.removeprefix(".commit-").removesuffix(".json")
    shutil.rmtree(workspace.root / f".staging-{stage_name}", ignore_errors=True)


def recover(workspace: Workspace) -> list[str]:
    """Finish what killed runs left (call with the workspace lock held): publish commits that
    were recorded, drop staging folders that were not, remove temporary files of atomic
    writes. Returns what was done, one line each."""
    done = []
    for record in sorted(workspace.root.glob(".commit-*.json")):
        _publish(workspace, record)
        done.append(f"finished publishing {record.name}")
    for leftover in sorted(workspace.root.glob(".commit-*.json.writing")):
        leftover.unlink()
    for folder in sorted(workspace.root.glob(".staging-*")):
        shutil.rmtree(folder, ignore_errors=True)
        done.append(f"dropped {folder.name} (its run did not finish)")
    for name in _LEFTOVER_FOLDERS:
        folder = workspace.root / name
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if _LEFTOVER.match(path.name):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                done.append(f"removed {path.relative_to(workspace.root)}")
    return done


def settle(workspace: Workspace) -> None:
    """Finish publishing what a killed stage committed, unless a stage is running: what a
    command that only reads a workspace (ask, eval, a loaded memory) does first."""
    if not any(workspace.root.glob(".commit-*.json")):
        return
    with contextlib.suppress(RagtuneError), workspace_lock(workspace):
        for record in sorted(workspace.root.glob(".commit-*.json")):
            _publish(workspace, record)


def read_stages(workspace: Workspace) -> dict[str, Any]:
    """The committed generations (`stages.json`), empty for a workspace written before it.

    Raises:
        RagtuneError: the file is not what ragtune writes.
    """
    path = workspace.root / STAGES_FILE
    if not path.is_file():
        return {}
    try:
        stages = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise RagtuneError(
            f"not readable ({error}); delete it and run the stages again", path=path
        ) from None
    if not isinstance(stages, dict):
        raise RagtuneError("not a stages record; delete it and run the stages again", path=path)
    return stages


def check_generation(workspace: Workspace, name: str) -> None:
    """Check that the files stage `name` committed are still the ones it wrote.

    Raises:
        RagtuneError: a file differs, naming it and the command to re-run.
    """
    entry = read_stages(workspace).get(name)
    if not isinstance(entry, dict):
        return  # never committed here (or a workspace from before stages.json)
    for relative, expected in sorted(entry.get("files", {}).items()):
        path = workspace.root / relative
        if path.is_file() and _fingerprint(path) != expected:  # (missing: its reader says so)
            raise RagtuneError(
                f"was changed since it was written: it is not the file `ragtune {name}` "
                f"committed with the rest of generation {entry.get('generation')}, so the "
                "workspace mixes two runs; "
                f"run `ragtune {name} {workspace.root}` again",
                path=path,
            )


@contextlib.contextmanager
def workspace_lock(workspace: Workspace) -> Iterator[None]:
    """Hold the workspace's writer lock (an advisory lock on its folder) for the block.

    Raises:
        RagtuneError: another process holds it.
    """
    descriptor = os.open(workspace.root, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RagtuneError(
                    "another ragtune command is writing this workspace; wait for it to finish",
                    path=workspace.root,
                ) from None
            raise
        yield
    finally:
        os.close(descriptor)  # releases the lock


def kill_point(name: str) -> None:
    """Kill this process here when `RAGTUNE_TEST_KILL_AT` names this point (the kill tests'
    instrumented checkpoints; a no-op otherwise)."""
    if os.environ.get("RAGTUNE_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _fingerprint(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _absolute(path: Path) -> Path:
    return path.resolve()


def _sync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


__all__: Sequence[str] = (
    "STAGES_FILE",
    "check_generation",
    "kill_point",
    "read_stages",
    "recover",
    "runs_as_stage",
    "settle",
    "stage",
    "staged_target",
    "workspace_lock",
)
