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
            blocking = next((p for p in root.parents if p.exists() and not p.is_dir()), None)
            if blocking is not None:
                raise RagtuneError(
                    f"cannot be a workspace: {blocking} is a file, not a folder", path=root
                )
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

    @property
    def entities_path(self) -> Path:
        """`entities.parquet`: the merged entities (graph nodes)."""
        return self.root / "entities.parquet"

    @property
    def relationships_path(self) -> Path:
        """`relationships.parquet`: the merged relationships (graph edges)."""
        return self.root / "relationships.parquet"

    @property
    def communities_path(self) -> Path:
        """`communities.parquet`: the hierarchical Leiden communities."""
        return self.root / "communities.parquet"

    @property
    def community_reports_path(self) -> Path:
        """`community_reports.parquet`: one report per community."""
        return self.root / "community_reports.parquet"

    @property
    def index_summary_path(self) -> Path:
        """`index.json`: what the last index run did (counts, failures, source)."""
        return self.root / "index.json"

    @property
    def extractions_path(self) -> Path:
        """`cache/extractions.jsonl`: each text unit's extraction, so a run resumes."""
        return self.root / "cache" / "extractions.jsonl"

    @property
    def synth_dir(self) -> Path:
        """`synth/`: the synthesized training data."""
        return self.root / "synth"

    @property
    def train_path(self) -> Path:
        """`synth/train.jsonl`: training records (TRL conversational prompt-completion)."""
        return self.synth_dir / "train.jsonl"

    @property
    def val_path(self) -> Path:
        """`synth/val.jsonl`: validation records."""
        return self.synth_dir / "val.jsonl"

    @property
    def card_path(self) -> Path:
        """`synth/card.json`: what the synthesis produced, dropped and cost."""
        return self.synth_dir / "card.json"

    @property
    def synth_state_path(self) -> Path:
        """`synth/state.json`: the settings and units the last synthesis ran with, so the next
        run writes records only for what changed."""
        return self.synth_dir / "state.json"

    @property
    def forgotten_path(self) -> Path:
        """`forgotten.json`: the documents `ragtune forget` removed (ids and sources, never
        their text), which ingesting the corpus again leaves out."""
        return self.root / "forgotten.json"

    @property
    def adapters_dir(self) -> Path:
        """`adapters/`: the trained LoRA adapters, one folder each."""
        return self.root / "adapters"

    def adapter_path(self, name: str) -> Path:
        """`adapters/<name>/`: one adapter (PEFT safetensors, tokenizer, manifest.json)."""
        return self.adapters_dir / name
