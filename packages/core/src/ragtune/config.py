"""The memory's configuration: `memory.yaml` in the workspace, plus `key=value` overrides.

Each section is a dataclass whose fields carry their help text (as in TRL's configs). Settings
come from the defaults, then `memory.yaml`, then overrides like ``chunking.size=300``; every
value is checked against its field's type, and unknown keys are refused with the known ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ragtune.corpus.chunking import check_chunking
from ragtune.errors import ConfigError, yaml_error_summary
from ragtune.fileio import atomic_write_text
from ragtune.index.settings import INDEX_RANGES, IndexConfig
from ragtune.llm.specs import ModelSpec
from ragtune.ranges import Range, check_ranges, counts
from ragtune.synth.settings import SYNTH_RANGES, SynthConfig
from ragtune.train.settings import TRAIN_RANGES, TrainConfig


@dataclass
class CorpusConfig:
    """Where the memory's documents come from."""

    path: str | None = field(
        default=None,
        metadata={
            "help": "The corpus: a folder of .txt/.md files, a JSONL file or a LoCoMo JSON file."
        },
    )
    format: Literal["auto", "text", "jsonl", "locomo"] = field(
        default="auto", metadata={"help": "The corpus format; auto detects it from the path."}
    )


@dataclass
class ChunkingConfig:
    """How documents are cut into text units."""

    size: int = field(default=500, metadata={"help": "Tokens per text unit at most."})
    overlap: int = field(
        default=100, metadata={"help": "Tokens shared by consecutive units at most."}
    )
    tokenizer: str | None = field(
        default=None,
        metadata={"help": "Model spec whose tokenizer counts tokens; default `model`."},
    )


@dataclass
class MemoryConfig:
    """Everything that builds one memory."""

    model: str = field(
        default="embedded", metadata={"help": "The model to tune: embedded or hf:<repo-or-path>."}
    )
    teacher: str = field(
        default="embedded",
        metadata={
            "help": "The model that extracts and synthesizes: embedded, hf:... or "
            "openai:<model>@<base_url>."
        },
    )
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        """Check values that depend on each other.

        Raises:
            ConfigError: a value is out of range or a model spec is malformed.
        """
        for spec in (self.model, self.teacher, self.chunking.tokenizer, self.train.base_model):
            if spec is not None:
                ModelSpec.parse(spec)
        check_ranges(self.chunking, CHUNKING_RANGES, "chunking.")
        check_chunking(self.chunking.size, self.chunking.overlap)
        self.index.check()
        self.synth.check()
        self.train.check()

    @property
    def extractor(self) -> Literal["llm", "heuristic"]:
        """The extractor `index.extractor` names, with auto resolved from the teacher."""
        return self.index.extractor_for(self.teacher)

    def index_step(
        self, setting: Literal["auto", "llm", "extractive"]
    ) -> Literal["llm", "extractive"]:
        """`setting` (of summaries or reports), with auto resolved from the extractor."""
        return self.index.step_for(setting, self.teacher)

    @property
    def synth_writer(self) -> Literal["llm", "heuristic"]:
        """Who `synth.writer` names, with auto resolved from the teacher."""
        return self.synth.writer_for(self.teacher)

    @property
    def base_model(self) -> str:
        """The model spec that training tunes."""
        return self.train.base_model or self.model

    @property
    def chunking_tokenizer(self) -> str:
        """The model spec whose tokenizer chunking uses."""
        return self.chunking.tokenizer or self.model


#: The range of each numeric `chunking.*` setting.
CHUNKING_RANGES = {"size": counts(1, 1_000_000), "overlap": counts(0, 1_000_000)}

#: The range of every numeric setting, by dotted name: checked as each value is read (naming
#: the `memory.yaml` line or the command-line option it came from) and by `validate`.
RANGES: dict[str, Range] = {
    f"{section}.{name}": allowed
    for section, ranges in (
        ("chunking", CHUNKING_RANGES),
        ("index", INDEX_RANGES),
        ("synth", SYNTH_RANGES),
        ("train", TRAIN_RANGES),
    )
    for name, allowed in ranges.items()
}


def setting_names(section: type[Any] = MemoryConfig, prefix: str = "") -> list[str]:
    """The dotted names of every setting (``chunking.size``, ...)."""
    names = []
    for item in dataclasses.fields(section):
        kind = _field_type(section, item.name)
        if dataclasses.is_dataclass(kind):
            names += setting_names(typing.cast(type[Any], kind), f"{prefix}{item.name}.")
        else:
            names.append(prefix + item.name)
    return names


def setting_field(dotted: str) -> tuple[Any, str]:
    """The declared type and the help text of the setting `dotted` (``train.lr`` → ``float``,
    "Peak learning rate."): what a command-line option that sets it takes and says.

    Raises:
        ConfigError: `dotted` names no setting.
    """
    section: Any = MemoryConfig
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        fields = {item.name: item for item in dataclasses.fields(section)}
        if part not in fields:
            raise ConfigError(f"unknown setting {dotted!r}")
        kind = _field_type(section, part)
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(kind):
                raise ConfigError(f"{dotted!r} is a section, not a setting")
            return kind, str(fields[part].metadata.get("help", ""))
        if not dataclasses.is_dataclass(kind):
            raise ConfigError(f"unknown setting {dotted!r}")
        section = kind
    raise ConfigError(f"unknown setting {dotted!r}")


def load_config(
    path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> MemoryConfig:
    """The configuration from defaults, then the YAML file at `path` (if it exists), then
    `overrides` (``key=value`` strings with dotted keys).

    Raises:
        ConfigError: the file is not valid YAML, or a key or value is invalid.
    """
    config = MemoryConfig()
    if path is not None and path.is_file():
        text = _settings_text(path)
        try:
            data = yaml.safe_load(text) or {}
            lines = _key_lines(yaml.compose(text))
        except yaml.YAMLError as error:
            problem, where = yaml_error_summary(error)
            raise ConfigError(f"invalid YAML ({problem})", path=path, location=where) from None
        if not isinstance(data, dict):
            raise ConfigError("must be a mapping of settings", path=path)
        _apply_mapping(config, data, "", str(path), lines)
        try:
            config.validate()
        except ConfigError as error:
            raise ConfigError(error.message, path=path) from None
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r} is not key=value (like chunking.size=300)")
        set_value(config, key.strip(), raw)
    config.validate()
    return config


def _settings_text(path: Path) -> str:
    """The text of the settings file `path`.

    Raises:
        ConfigError: it is not UTF-8 text.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot be read ({error.strerror})", path=path) from None
    if b"\0" in data:
        raise ConfigError("is a binary file, not YAML settings", path=path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"is not UTF-8 text (byte {error.start}); save it as UTF-8", path=path
        ) from None


def _key_lines(node: Any, prefix: str = "") -> dict[str, int]:
    """The line (1-based) of each dotted key in the composed YAML `node`."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}{key.value}"
            lines[dotted] = key.start_mark.line + 1
            lines.update(_key_lines(value, f"{dotted}."))
    return lines


def save_config(config: MemoryConfig, path: Path) -> None:
    """Write `config` to `path` as YAML, atomically."""
    text = yaml.safe_dump(dataclasses.asdict(config), sort_keys=False, allow_unicode=True)
    atomic_write_text(path, "# ragtune memory configuration (written by ragtune)\n" + text)


def set_value(config: MemoryConfig, dotted: str, text: str, *, where: str = "command line") -> None:
    """Set the setting `dotted` of `config` from `text` (read as YAML, except for text settings).

    Raises:
        ConfigError: the key is unknown or the value has the wrong type.
    """
    target: Any = config
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = _child(target, part, dotted, where)
    name = parts[-1]
    kind = _known_field(target, name, dotted, where)
    if dataclasses.is_dataclass(kind):
        raise ConfigError(f"{dotted!r} is a section; set one of its keys, like {dotted}.<key>=...")
    setattr(target, name, _convert(text, kind, dotted, where, from_text=True))


def _apply_mapping(
    target: Any, data: dict[Any, Any], prefix: str, where: str, lines: dict[str, int]
) -> None:
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        line = f"line {lines[dotted]}" if dotted in lines else ""
        kind = _known_field(target, str(key), dotted, where, line)
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{dotted!r} must be a mapping of settings", path=where, location=line
                )
            _apply_mapping(getattr(target, str(key)), value, f"{dotted}.", where, lines)
        else:
            converted = _convert(value, kind, dotted, where, from_text=False, location=line)
            setattr(target, str(key), converted)


def _child(target: Any, name: str, dotted: str, where: str) -> Any:
    kind = _known_field(target, name, dotted, where)
    if not dataclasses.is_dataclass(kind):
        raise ConfigError(f"unknown setting {dotted!r}", path=where)
    return getattr(target, name)


def _known_field(target: Any, name: str, dotted: str, where: str, location: str = "") -> Any:
    names = [f.name for f in dataclasses.fields(target)]
    if name not in names:
        parts = dotted.split(".")
        section = ".".join(parts[: parts.index(name)]) if name in parts else ""
        close = difflib.get_close_matches(dotted, setting_names(), n=3, cutoff=0.75)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        what = f"the settings of {section}" if section else "the sections and settings"
        raise ConfigError(
            f"unknown setting {dotted!r} ({hint}{what}: {', '.join(names)})",
            path=where,
            location=location,
        )
    return _field_type(type(target), name)


def _field_type(section: type[Any], name: str) -> Any:
    return typing.get_type_hints(section)[name]


def _convert(
    raw: Any, kind: Any, dotted: str, where: str, *, from_text: bool, location: str = ""
) -> Any:
    """`raw` as a value of type `kind` in the setting's range (`RANGES`); with `from_text`,
    `raw` is text to read as YAML first.

    Raises:
        ConfigError: `raw` is not of that type or out of range, naming `where` and `location`.
    """
    value = _typed(raw, kind, dotted, where, from_text=from_text, location=location)
    allowed = RANGES.get(dotted)
    if allowed is not None and value is not None and not allowed.admits(value):
        raise ConfigError(f"{dotted} must be {allowed}, got {raw!r}", path=where, location=location)
    return value


def _typed(raw: Any, kind: Any, dotted: str, where: str, *, from_text: bool, location: str) -> Any:
    """`raw` as a value of type `kind` (see `_convert`)."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    text = raw if from_text else None
    try:
        value = yaml.safe_load(raw) if from_text else raw
    except yaml.YAMLError:
        value = raw
    if value is None and type(None) in options:
        return None
    for option in options:
        if typing.get_origin(option) is list:
            if isinstance(value, str):  # a comma-separated list on the command line
                value = [part.strip() for part in value.split(",") if part.strip()]
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return list(value)
            continue
        if option is str and text is not None:
            return text
        if option is str and isinstance(value, str):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if option is bool and isinstance(value, bool):
            return value
        if typing.get_origin(option) is Literal and value in typing.get_args(option):
            return value
    raise ConfigError(
        f"{dotted} must be {_describe(options)}, got {raw!r}", path=where, location=location
    )


def _describe(options: tuple[Any, ...]) -> str:
    words = []
    for option in options:
        if typing.get_origin(option) is list:
            words.append("a list of text")
        elif typing.get_origin(option) is Literal:
            words.append("one of " + ", ".join(map(str, typing.get_args(option))))
        elif option is type(None):
            words.append("empty")
        else:
            words.append(
                {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(
                    option, str(option)
                )
            )
    return " or ".join(words)
