"""Adapter versions: every training run writes a new version beside the old ones, and the
adapter's name points at one of them.

``adapters/<name>`` is a symbolic link to ``adapters/.versions/<name>/v<N>/`` (relative, so a
workspace can be moved or copied). A run writes ``v<N+1>`` completely (an atomic folder), then
switches: it records the version it is switching to in ``.versions/<name>/current`` and renames
a new link over the old one, one atomic rename — a reader loads the old version or the new one,
never a mix. A process killed between the record and the rename leaves the record ahead of the
link; `AdapterVersions.repair` (run by training, `ragtune adapters use` and every loader)
finishes the switch.

An adapter folder written before versions existed (a real folder at ``adapters/<name>``) is
version 1: the first switch moves it to ``.versions/<name>/v1``.

Each version's ``manifest.json`` names its parent (the version it continued, for an update) and
what the run added; ``trained.json`` beside it lists the training records (by hash) and the text
units whose records reached the weights through this version and its ancestors — what
`ragtune forget` needs to know which versions saw a document.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_write_text
from ragtune.hashing import canonical_json, content_hash
from ragtune.manifest import MANIFEST, Manifest
from ragtune.stages import kill_point, workspace_lock
from ragtune.workspace import Workspace

#: The folder (under `adapters/`) holding every adapter's versions.
VERSIONS = ".versions"
#: The file (in a version folder) listing what its weights were trained on.
TRAINED = "trained.json"
_VERSION = re.compile(r"^v([1-9][0-9]*)$")
_LEFTOVER = re.compile(r"^\..+\.(tmp|old)$")


def record_hash(record: dict[str, object]) -> str:
    """The hash of a training record by what the weights learn from it: its prompt and
    completion (not its kind or sources)."""
    return content_hash(canonical_json([record.get("prompt"), record.get("completion")]))


@dataclass(frozen=True)
class Trained:
    """What an adapter version's weights were trained on, its ancestors' training included.

    Attributes:
        records: Hashes of the training records (`record_hash`).
        units: Ids of the text units those records were synthesized from.
    """

    records: frozenset[str] = field(default_factory=frozenset)
    units: frozenset[str] = field(default_factory=frozenset)

    def write(self, folder: Path) -> None:
        """Write ``trained.json`` into `folder`."""
        data = {"records": sorted(self.records), "units": sorted(self.units)}
        (folder / TRAINED).write_text(json.dumps(data, indent=0) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> Trained | None:
        """The record of the version in `folder`, or None for one trained before it existed.

        Raises:
            RagtuneError: the file is not what ragtune writes.
        """
        path = folder / TRAINED
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(frozenset(map(str, data["records"])), frozenset(map(str, data["units"])))
        except (ValueError, KeyError, TypeError) as error:
            raise RagtuneError(f"is not a ragtune training record ({error})", path=path) from None


@dataclass(frozen=True)
class AdapterVersion:
    """One version of an adapter.

    Attributes:
        number: Its version number (1, 2, ...).
        folder: Its folder.
        manifest: Its manifest.
        current: Whether the adapter's name points at it.
    """

    number: int
    folder: Path
    manifest: Manifest
    current: bool

    @property
    def label(self) -> str:
        """``v<number>``."""
        return f"v{self.number}"


class AdapterVersions:
    """The versions of the adapter `name` of `workspace`.

    Args:
        workspace: The memory's workspace.
        name: The adapter's name (``default``).
    """

    def __init__(self, workspace: Workspace, name: str = "default") -> None:
        self.workspace = workspace
        self.name = name
        self.link = workspace.adapter_path(name)
        self.root = workspace.adapters_dir / VERSIONS / name
        self._record = self.root / "current"

    def folder(self, number: int) -> Path:
        """The folder of version `number`."""
        return self.root / f"v{number}"

    def numbers(self) -> list[int]:
        """The versions on disk, oldest first (a legacy folder counts as version 1)."""
        found = set()
        if self.root.is_dir():
            for path in self.root.iterdir():
                match = _VERSION.match(path.name)
                if match and path.is_dir():
                    found.add(int(match.group(1)))
        if self._legacy():
            found.add(self._legacy_number())
        return sorted(found)

    def current(self) -> int | None:
        """The version the adapter's name points at, or None when it has none."""
        if self._legacy():
            return self._legacy_number()
        if not self.link.is_symlink():
            return None
        match = _VERSION.match(self.link.readlink().name)
        return int(match.group(1)) if match else None

    def next_number(self) -> int:
        """The number a new version gets."""
        return max([0, *self.numbers(), *self._recorded()]) + 1

    def all(self) -> list[AdapterVersion]:
        """Every version with its manifest, oldest first.

        Raises:
            RagtuneError: a version's manifest is missing or unreadable.
        """
        current = self.current()
        return [
            AdapterVersion(n, self.path_of(n), Manifest.read(self.path_of(n)), n == current)
            for n in self.numbers()
        ]

    def path_of(self, number: int) -> Path:
        """Where version `number`'s files are now (the folder at the adapter's name, when it is
        a folder: written before versions existed, or copied without its links)."""
        if self._legacy() and number == self._legacy_number():
            return self.link
        return self.folder(number)

    def get(self, number: int) -> AdapterVersion:
        """Version `number`.

        Raises:
            RagtuneError: there is no such version, or its manifest is unreadable or names
                another adapter or version.
        """
        if number not in self.numbers():
            have = ", ".join(f"v{n}" for n in self.numbers()) or "none"
            raise RagtuneError(
                f"adapter {self.name!r} has no version v{number} (versions: {have})",
                path=self.workspace.root,
            )
        folder = self.path_of(number)
        manifest = Manifest.read(folder)
        if manifest.adapter != self.name or manifest.version != number:
            raise RagtuneError(
                f"holds adapter {manifest.adapter!r} version v{manifest.version}, not "
                f"{self.name!r} v{number}: the version folders were mixed up; restore them or "
                "train again",
                path=folder / MANIFEST,
            )
        if not any(folder.glob("*.safetensors")):
            raise RagtuneError(
                f"version v{number} has no weights (*.safetensors); train again", path=folder
            )
        return AdapterVersion(number, folder, manifest, number == self.current())

    def use(self, number: int) -> None:
        """Point the adapter's name at version `number` (checked first), atomically."""
        self.get(number)
        self._migrate_legacy()
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self._record, f"v{number}\n")
        kill_point("adapters:recorded")
        self._point_at(number)

    def intended(self) -> int | None:
        """The version the adapter's name points at once a switch cut short is finished (what
        `current` is after `repair`), without changing anything."""
        current = self.current()
        if self._legacy():
            return current
        wanted = self._recorded()
        if wanted and wanted[0] != current and self.folder(wanted[0]).is_dir():
            return wanted[0]
        return current

    def repair(self, *, locked: bool = False) -> list[str]:
        """Finish a switch a killed process left half-done and remove its temporary files;
        returns what was done, one line each.

        The temporary files are removed only under the workspace's lock: `locked` says the
        caller holds it; otherwise it is taken here, and when a writer holds it (a training
        run writing a version, pruning, or switching), its files are left alone.
        """
        done = []
        leftovers = (
            [path for path in self.root.iterdir() if _LEFTOVER.match(path.name)]
            if self.root.is_dir()
            else []
        )
        if leftovers:
            with contextlib.ExitStack() as stack:
                if not locked:
                    try:
                        stack.enter_context(workspace_lock(self.workspace))
                    except RagtuneError:  # a writer is at work: its files are not leftovers
                        leftovers = []
                for path in leftovers:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
                    done.append(f"removed {path.relative_to(self.workspace.root)}")
        wanted = self.intended()
        if wanted is not None and wanted != self.current():
            self._point_at(wanted)
            done.append(f"adapter {self.name!r} switched to v{wanted} (a switch was cut short)")
        return done

    def remove(self, numbers: Iterable[int]) -> list[int]:
        """Delete versions `numbers` (never the current one); returns those deleted."""
        current = self.current()
        removed = []
        for number in sorted(set(numbers)):
            if number == current or number not in self.numbers():
                continue
            doomed = self.root / f".v{number}.removing.old"
            self.folder(number).rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)  # (what is left, the next repair removes)
            removed.append(number)
        return removed

    def prune(self, keep: int) -> list[int]:
        """Delete the oldest versions beyond the newest `keep` (0: keep all), never the
        current one; returns those deleted."""
        if keep <= 0:
            return []
        numbers = self.numbers()
        return self.remove(numbers[: max(0, len(numbers) - keep)])

    def lineage(self, number: int) -> list[AdapterVersion]:
        """Version `number` and its ancestors still on disk, newest first."""
        chain = []
        seen = set()
        next_number: int | None = number
        while next_number is not None and next_number not in seen:
            seen.add(next_number)
            if next_number not in self.numbers():
                break
            version = self.get(next_number)
            chain.append(version)
            next_number = version.manifest.parent
        return chain

    def _legacy(self) -> bool:
        """Whether the adapter's name is a folder, not a link."""
        return self.link.is_dir() and not self.link.is_symlink()

    def _legacy_number(self) -> int:
        """The version the folder at the adapter's name holds (its manifest says; 1 for one
        written before versions existed)."""
        try:
            return Manifest.read(self.link).version
        except RagtuneError:
            return 1

    def _recorded(self) -> list[int]:
        try:
            match = _VERSION.match(self._record.read_text(encoding="utf-8").strip())
        except OSError:
            return []
        return [int(match.group(1))] if match else []

    def _migrate_legacy(self) -> None:
        """Turn a folder at the adapter's name into a version and a link to it: one written
        before versions existed moves to ``v1``; a copy of a version that is there (a workspace
        copied without its links) is dropped.

        Raises:
            RagtuneError: the folder is a version whose number is taken by other weights.
        """
        if not self._legacy():
            return
        number = self._legacy_number()
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.folder(number)
        if target.is_dir():
            if _weights(target) != _weights(self.link):
                raise RagtuneError(
                    f"is a folder holding version v{number}, but {target} holds other weights "
                    "under that number; move one of them away",
                    path=self.link,
                )
            atomic_write_text(self._record, f"v{number}\n")
            doomed = self.link.with_name(f".{self.name}.copy.old")
            self.link.rename(doomed)
            self._point_at(number)
            shutil.rmtree(doomed)
            return
        atomic_write_text(self._record, f"v{number}\n")
        self.link.rename(target)
        self._point_at(number)

    def _point_at(self, number: int) -> None:
        temporary = self.link.with_name(f".{self.name}.link.tmp")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(Path(VERSIONS) / self.name / f"v{number}", target_is_directory=True)
        temporary.replace(self.link)


def _weights(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.safetensors"))}


def repair_adapters(workspace: Workspace) -> list[str]:
    """`AdapterVersions.repair` for every adapter of `workspace` that has versions."""
    root = workspace.adapters_dir / VERSIONS
    if not root.is_dir():
        return []
    done: list[str] = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir():
            done.extend(AdapterVersions(workspace, folder.name).repair())
    return done
