"""memory.yaml and KEY=VALUE overrides: defaults, types, unknown keys and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ragtune.config import (
    RANGES,
    MemoryConfig,
    load_config,
    save_config,
    set_value,
    setting_field,
    setting_names,
)
from ragtune.errors import ConfigError

KNOWN = [
    "model",
    "teacher",
    "corpus.path",
    "corpus.format",
    "chunking.size",
    "chunking.overlap",
    "chunking.tokenizer",
    "index.extractor",
    "index.entity_types",
    "index.gleanings",
    "index.summaries",
    "index.reports",
    "index.max_description_chars",
    "index.max_cluster_size",
    "index.seed",
    "index.batch_size",
    "index.max_tokens",
    "synth.strategies",
    "synth.writer",
    "synth.seed",
    "synth.val_fraction",
    "synth.split",
    "synth.min_support",
    "synth.dedup_threshold",
    "synth.max_tokens",
    "synth.batch_size",
    "synth.entity_templates.per_entity",
    "synth.entity_templates.types",
    "synth.entity_templates.min_frequency",
    "synth.relationship_templates.per_relationship",
    "synth.relationship_templates.min_weight",
    "synth.relationship_templates.types",
    "synth.cot.max_entities",
    "synth.cot.max_relationships",
    "synth.cot.max_units",
    "synth.cot.max_context_chars",
    "synth.cot.types",
    "synth.text_units.per_unit",
    "synth.text_units.paraphrases",
    "synth.text_units.mentions",
    "synth.global_qa.per_community",
    "synth.global_qa.max_communities",
    "synth.global_qa.max_reports",
    "synth.global_qa.max_points",
    "synth.global_qa.timelines",
    "synth.temporal.paraphrases",
    "synth.temporal.orderings",
    "synth.temporal.told_days",
    "synth.unanswerable.share",
    "synth.unanswerable.abstention",
    "synth.unanswerable.kinds",
    "synth.unanswerable.explain",
    "synth.profiles.copies",
    "synth.profiles.per_record",
    "synth.recall.per_unit",
    "synth.recall.passage",
    "train.adapter",
    "train.base_model",
    "train.quantization",
    "train.epochs",
    "train.max_steps",
    "train.lr",
    "train.batch_size",
    "train.grad_accum",
    "train.max_seq_len",
    "train.warmup_ratio",
    "train.max_grad_norm",
    "train.lora_r",
    "train.lora_alpha",
    "train.lora_dropout",
    "train.packing",
    "train.group_by_length",
    "train.checkpoint_steps",
    "train.seed",
    "train.objective",
    "train.distill_top_k",
    "train.replay",
    "train.update_epochs",
    "train.keep_versions",
]


def config_error(path: Path | None = None, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return str(caught.value)


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    config = load_config()

    assert config.model == "embedded"
    assert config.teacher == "embedded"
    assert config.chunking.size == 500
    assert config.chunking.overlap == 100
    assert config.chunking.tokenizer is None
    assert config.chunking_tokenizer == "embedded"
    assert config.corpus.path is None
    assert config.corpus.format == "auto"


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "memory.yaml") == MemoryConfig()


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write_yaml(tmp_path / "memory.yaml", "# nothing yet\n")) == MemoryConfig()


def test_setting_names() -> None:
    assert setting_names() == KNOWN


def test_yaml_file_values(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "memory.yaml",
        "model: hf:my/model\n"
        "teacher: openai:gpt-4o-mini@http://localhost:8000/v1\n"
        "corpus:\n  path: /data/notes\n  format: text\n"
        "chunking:\n  size: 300\n  overlap: 50\n  tokenizer: hf:other/tok\n",
    )

    config = load_config(path)

    assert config.model == "hf:my/model"
    assert config.teacher == "openai:gpt-4o-mini@http://localhost:8000/v1"
    assert config.corpus.path == "/data/notes"
    assert config.corpus.format == "text"
    assert config.chunking.size == 300
    assert config.chunking.overlap == 50
    assert config.chunking.tokenizer == "hf:other/tok"
    assert config.chunking_tokenizer == "hf:other/tok"


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  size: 300\n  overlap: 50\n")

    config = load_config(path, ["chunking.size=400", "chunking.overlap = 20"])

    assert config.chunking.size == 400
    assert config.chunking.overlap == 20


def test_override_integer_is_parsed_as_int() -> None:
    config = load_config(overrides=["chunking.size=300"])

    assert config.chunking.size == 300
    assert type(config.chunking.size) is int


@pytest.mark.parametrize("value", ["auto", "text", "jsonl", "locomo"])
def test_override_corpus_format_in_the_literal(value: str) -> None:
    assert load_config(overrides=[f"corpus.format={value}"]).corpus.format == value


def test_override_corpus_format_outside_the_literal_is_refused() -> None:
    message = config_error(overrides=("corpus.format=csv",))

    assert "corpus.format must be one of auto, text, jsonl, locomo" in message
    assert "'csv'" in message
    assert "command line" in message


def test_override_null_tokenizer_is_none(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  tokenizer: hf:other/tok\n")

    config = load_config(path, ["chunking.tokenizer=null"])

    assert config.chunking.tokenizer is None
    assert config.chunking_tokenizer == config.model


def test_override_model_text_is_kept_verbatim() -> None:
    # Read as YAML, this would be a mapping or lose its quotes; text settings keep the text.
    spec = "openai:llama3.1:8b@http://localhost:11434/v1"

    config = load_config(overrides=[f"model={spec}", "corpus.path=notes #1: 'x'"])

    assert config.model == spec
    assert config.corpus.path == "notes #1: 'x'"


def test_override_value_with_equals_sign_keeps_the_rest() -> None:
    config = load_config(overrides=["corpus.path=/data/a=b"])

    assert config.corpus.path == "/data/a=b"


def test_unknown_key_in_override_lists_the_settings_of_its_section() -> None:
    message = config_error(overrides=("chunking.sise=300",))

    assert "unknown setting 'chunking.sise'" in message
    assert "command line" in message
    assert "the settings of chunking: size, overlap, tokenizer" in message


def test_unknown_section_in_override() -> None:
    message = config_error(overrides=("retrieval.k=3",))

    assert "unknown setting 'retrieval.k'" in message
    assert "the sections and settings: model, teacher, corpus, chunking" in message


def test_dotted_key_under_a_plain_setting_is_unknown() -> None:
    message = config_error(overrides=("model.name=x",))

    assert "unknown setting 'model.name'" in message


def test_unknown_key_in_file_lists_the_settings_of_its_section(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  size: 300\n  stride: 10\n")

    message = config_error(path)

    assert message.startswith(f"{path}: line 3: unknown setting 'chunking.stride'")
    assert "the settings of chunking: size, overlap, tokenizer" in message


def test_wrong_type_in_override_names_the_key() -> None:
    message = config_error(overrides=("chunking.size=big",))

    assert "chunking.size must be an integer, got 'big'" in message


def test_boolean_is_not_an_integer() -> None:
    message = config_error(overrides=("chunking.overlap=true",))

    assert "chunking.overlap must be an integer" in message


def test_wrong_type_in_file_names_the_key_and_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  size: 12.5\n")

    message = config_error(path)

    assert str(path) in message
    assert "chunking.size must be an integer, got 12.5" in message


def test_non_text_model_in_file_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "model: [a, b]\n")

    message = config_error(path)

    assert str(path) in message
    assert "model must be text" in message


def test_null_for_a_required_setting_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  size: null\n")

    message = config_error(path)

    assert "chunking.size must be an integer" in message


@pytest.mark.parametrize("override", ["chunking.size", "=300", "  =x", ""])
def test_malformed_override_without_equals(override: str) -> None:
    message = config_error(overrides=(override,))

    assert f"override {override!r} is not key=value" in message
    assert "chunking.size=300" in message


def test_invalid_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "model: [embedded\n")

    message = config_error(path)

    assert message.startswith(f"{path}: line 2: invalid YAML")


def test_invalid_yaml_file_error_is_one_line(tmp_path: Path) -> None:
    """ConfigError is shown as one line by the CLI; PyYAML's multi-line text must not leak."""
    path = write_yaml(tmp_path / "memory.yaml", "model: [embedded\n")

    message = config_error(path)

    assert message.splitlines() == [message]


def test_yaml_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "- model\n- embedded\n")

    message = config_error(path)

    assert str(path) in message
    assert "must be a mapping of settings" in message


def test_section_set_as_scalar_in_file_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking: 300\n")

    message = config_error(path)

    assert str(path) in message
    assert "'chunking' must be a mapping of settings" in message


def test_section_set_as_scalar_in_override_is_refused() -> None:
    message = config_error(overrides=("chunking=300",))

    assert "'chunking' is a section" in message
    assert "chunking.<key>=" in message


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (("chunking.overlap=500",), "chunking.overlap must be at least 0 and below"),
        (("chunking.size=50", "chunking.overlap=50"), "below chunking.size (50), got 50"),
        (("chunking.overlap=-1",), "chunking.overlap must be at least 0"),
        (("chunking.size=0", "chunking.overlap=0"), "chunking.size must be at least 1 and"),
    ],
)
def test_chunking_range_is_checked(overrides: tuple[str, ...], words: str) -> None:
    assert words in config_error(overrides=overrides)


def test_overlap_at_least_size_in_file_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "chunking:\n  size: 100\n  overlap: 100\n")

    assert "below chunking.size (100), got 100" in config_error(path)


@pytest.mark.parametrize(
    "override",
    ["model=gpt-4", "teacher=openai:", "chunking.tokenizer=hf:", "model=llama:3b"],
)
def test_bad_model_spec_is_refused(override: str) -> None:
    message = config_error(overrides=(override,))

    assert "unknown model spec" in message
    assert "embedded, hf:<repo-id-or-path> or openai:<model>@<base_url>" in message


def test_set_value_names_where_the_value_came_from() -> None:
    config = MemoryConfig()

    with pytest.raises(ConfigError) as caught:
        set_value(config, "corpus.format", "pdf", where="--format")

    assert str(caught.value).startswith("--format: corpus.format must be one of")


def test_save_then_load_roundtrip(tmp_path: Path) -> None:
    config = load_config(
        overrides=[
            "model=hf:/models/tiny",
            "teacher=openai:llama3.1:8b@http://localhost:11434/v1",
            "corpus.path=/data/notes",
            "corpus.format=jsonl",
            "chunking.size=256",
            "chunking.overlap=32",
            "chunking.tokenizer=hf:/models/tok",
        ]
    )
    path = tmp_path / "ws" / "memory.yaml"

    save_config(config, path)

    assert load_config(path) == config
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert saved["chunking"] == {"size": 256, "overlap": 32, "tokenizer": "hf:/models/tok"}
    assert path.read_text(encoding="utf-8").startswith("# ragtune memory configuration")


def test_save_then_load_roundtrip_of_defaults(tmp_path: Path) -> None:
    path = tmp_path / "memory.yaml"

    save_config(MemoryConfig(), path)

    assert load_config(path) == MemoryConfig()
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["chunking"]["tokenizer"] is None


def test_list_setting_from_yaml_and_command_line(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "memory.yaml", "index:\n  entity_types: [person, geo]\n")
    assert load_config(path).index.entity_types == ["person", "geo"]
    assert load_config(path, ["index.entity_types=person, event"]).index.entity_types == [
        "person",
        "event",
    ]
    assert "must be a list of text" in config_error(path, ("index.entity_types=3",))


def test_extractor_auto_follows_the_teacher() -> None:
    assert load_config().extractor == "heuristic"
    remote = load_config(None, ["teacher=openai:gpt-4o-mini@http://localhost:1/v1"])
    assert remote.extractor == "llm"
    assert remote.index_step(remote.index.reports) == "llm"
    assert load_config(None, ["index.extractor=llm"]).extractor == "llm"
    assert load_config().index_step("auto") == "extractive"


def test_index_ranges_are_checked() -> None:
    assert "index.gleanings must be at least 0 and at most 100" in config_error(
        None, ("index.gleanings=-1",)
    )
    assert "index.batch_size must be at least 1" in config_error(None, ("index.batch_size=0",))
    assert "entity_types" in config_error(None, ("index.entity_types=[]",))


def test_synth_choices_are_checked() -> None:
    assert "synth.unanswerable.kinds must name swapped, absent or both" in config_error(
        None, ("synth.unanswerable.kinds=[made_up]",)
    )
    assert "synth.unanswerable.kinds" in config_error(None, ("synth.unanswerable.kinds=[]",))
    assert "synth.text_units.mentions" in config_error(None, ("synth.text_units.mentions=poem",))
    assert load_config(None, ["synth.text_units.mentions=clause"]).synth.text_units.mentions == (
        "clause"
    )


def test_the_defaults_are_the_measured_recipe() -> None:
    """docs/experiments.md: the recipe that measured best on the dev conversations."""
    from ragtune.synth import DEFAULT_STRATEGIES, STRATEGY_NAMES

    config = load_config()
    assert config.synth.strategies == list(DEFAULT_STRATEGIES)
    assert set(DEFAULT_STRATEGIES) < set(STRATEGY_NAMES)
    assert (config.train.epochs, config.train.lr, config.train.max_seq_len) == (2.0, 1e-3, 512)


def test_every_numeric_setting_declares_its_range() -> None:
    numeric = [n for n in setting_names() if setting_field(n)[0] in (int, float)]
    assert len(numeric) > 40
    assert sorted(numeric) == sorted(RANGES)
    defaults = MemoryConfig()
    for name, allowed in RANGES.items():  # the defaults are in range
        section, _, key = name.partition(".")
        value = getattr(getattr(defaults, section), key.split(".")[0])
        for part in key.split(".")[1:]:
            value = getattr(value, part)
        assert allowed.admits(value), name


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_steps=-5", "train.max_steps must be -1 (no limit) or at least 1"),
        ("train.max_steps=0", "train.max_steps must be -1 (no limit) or at least 1"),
        ("chunking.size=100000000000000000000", "chunking.size must be at least 1 and at most"),
        ("train.lr=0", "train.lr must be above 0"),
        ("synth.val_fraction=1", "synth.val_fraction must be at least 0 and below 1"),
        ("synth.text_units.per_unit=-1", "synth.text_units.per_unit must be at least 0"),
        ("index.seed=-3", "index.seed must be at least 0 and at most 4,294,967,295"),
    ],
)
def test_out_of_range_overrides_are_refused_naming_the_command_line(
    override: str, message: str
) -> None:
    error = config_error(None, (override,))
    assert error.startswith(f"command line: {message}")


def test_out_of_range_values_in_memory_yaml_name_the_file_and_line(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "memory.yaml", "model: embedded\ntrain:\n  epochs: 2\n  max_steps: -5\n"
    )
    assert config_error(path).startswith(f"{path}: line 4: train.max_steps must be -1")
    path = write_yaml(tmp_path / "memory.yaml", "synth:\n  strategies: []\n")
    assert config_error(path).startswith(f"{path}: synth.strategies must name at least one")


def test_an_empty_strategy_list_is_refused() -> None:
    assert "synth.strategies must name at least one of" in config_error(
        None, ("synth.strategies=[]",)
    )


def test_an_unknown_setting_is_named_with_its_close_matches_in_one_short_line(
    tmp_path: Path,
) -> None:
    error = config_error(None, ("chunking.sise=3",))
    assert error == (
        "command line: unknown setting 'chunking.sise' (did you mean chunking.size? the "
        "settings of chunking: size, overlap, tokenizer)"
    )
    path = write_yaml(tmp_path / "memory.yaml", "train:\n  epochs: 2\n  lora_rank: 8\n")
    error = config_error(path)
    assert error.startswith(f"{path}: line 3: unknown setting 'train.lora_rank'")
    assert len(error) - len(str(path)) < 400 and "\n" not in error
    assert "did you mean train.lora_r or" in error


def test_a_binary_or_non_utf8_memory_yaml_is_named(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert config_error(binary) == f"{binary}: is a binary file, not YAML settings"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model: caf\xe9\n".encode("latin-1"))
    assert config_error(latin).startswith(f"{latin}: is not UTF-8 text")
