"""The workspace: one folder holds one memory, every stage's files in known places."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragtune.errors import RagtuneError


@dataclass(frozen=True)
class Workspace:
    """The files of one memory.

    Args:
        root: The workspace folder.
    """

    root: Path

    @classmethod
    def at(cls, path: str | Path, *, create: bool = False) -> Workspace:
        """The workspace at `path`, creating the folder if `create`.

        Raises:
            RagtuneError: `path` is a file, or it does not exist and `create` is False.
        """
        root = Path(path).expanduser()
        if root.exists() and not root.is_dir():
            raise RagtuneError("is a file, not a workspace folder", path=root)
        if not root.exists():
            if not create:
                raise RagtuneError("no such workspace; run `ragtune ingest` first", path=root)
            root.mkdir(parents=True)
        return cls(root)

    @property
    def config_path(self) -> Path:
        """`memory.yaml`: the configuration that built the memory."""
        return self.root / "memory.yaml"

    @property
    def documents_path(self) -> Path:
        """`documents.parquet`."""
        return self.root / "documents.parquet"

    @property
    def text_units_path(self) -> Path:
        """`text_units.parquet`."""
        return self.root / "text_units.parquet"

    @property
    def llm_cache_path(self) -> Path:
        """`cache/llm.sqlite`: model responses keyed by model, messages and parameters."""
        return self.root / "cache" / "llm.sqlite"
