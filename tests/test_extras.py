"""`ragtune.extras`: a missing extra is one error naming the extra, the missing module and the
`pip install` to run; the entry points that build or evaluate a memory check first.

A module is made missing by putting None in `sys.modules` (then `importlib.util.find_spec`
answers None, and importing it fails), so these tests run with every extra installed."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragtune.config import MemoryConfig, load_config
from ragtune.errors import MissingExtraError, RagtuneError
from ragtune.extras import EXTRAS, install_command, missing_modules, require_extra
from ragtune.workspace import Workspace

CORE_PYPROJECT = Path(__file__).resolve().parents[1] / "packages" / "core" / "pyproject.toml"


def _missing(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_installed_modules_raise_nothing() -> None:
    require_extra("train", "json", "click", needed_for="ragtune index")
    require_extra("eval", "os.path", needed_for="ragtune eval")
    assert missing_modules("json", "click") == ()


def test_a_missing_module_names_the_extra_the_module_and_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _missing(monkeypatch, "networkx")
    with pytest.raises(MissingExtraError) as raised:
        require_extra("train", "networkx", "json", needed_for="ragtune index")
    assert str(raised.value) == (
        "ragtune index needs the train extra (networkx is not installed): "
        "pip install 'ragtune[train]'"
    )
    assert isinstance(raised.value, RagtuneError)
    assert raised.value.extra == "train"
    assert raised.value.missing == ("networkx",)


def test_every_missing_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingExtraError, match=re.escape("(no_such_a, no_such_b are not")):
        require_extra("eval", "no_such_a", "json", "no_such_b", needed_for="ragtune eval")
    # A dotted name whose package is missing is missing too (find_spec would raise).
    assert missing_modules("no_such_package.sub", "os.path") == ("no_such_package.sub",)


def test_without_modules_the_whole_extra_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    require_extra("all", needed_for="make setup")  # the test environment has every extra
    _missing(monkeypatch, "qdrant_edge")
    with pytest.raises(MissingExtraError, match=re.escape("(qdrant_edge is not installed)")):
        require_extra("eval", needed_for="ragtune eval")
    require_extra("train", needed_for="ragtune train")


def test_an_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        require_extra("gpu", "json", needed_for="x")
    assert install_command("all") == "pip install 'ragtune[all]'"


def _requirement_name(requirement: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("extra", ["train", "eval", "serve", "llamacpp"])
def test_the_modules_of_each_extra_are_those_its_distributions_install(extra: str) -> None:
    declared = tomllib.loads(CORE_PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    distributions = {_requirement_name(r) for r in declared[extra]}
    providers = importlib.metadata.packages_distributions()
    installed_by = {
        module: {_requirement_name(d) for d in providers.get(module, [])}
        for module in EXTRAS[extra]
    }
    assert {m for m, found in installed_by.items() if not found & distributions} == set()
    assert distributions <= set().union(*installed_by.values())
    assert declared["all"] == ["ragtune[train,eval,serve]"]
    assert set(EXTRAS["all"]) == set(EXTRAS["train"]) | set(EXTRAS["eval"]) | set(EXTRAS["serve"])


@pytest.fixture
def config() -> MemoryConfig:
    return load_config(None, [])


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "memory", create=True)


def test_building_checks_the_train_extra_before_reading_the_workspace(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, config: MemoryConfig
) -> None:
    from ragtune.index.pipeline import adopt_graphrag_index, build_index
    from ragtune.synth.pipeline import synthesize
    from ragtune.train.trainer import train_adapter

    _missing(monkeypatch, "graspologic_native", "lemminflect", "trl")
    calls: list[tuple[str, Callable[[], object]]] = [
        ("ragtune index", lambda: build_index(workspace, config, progress=False)),
        ("ragtune index", lambda: adopt_graphrag_index(workspace, workspace.root)),
        ("ragtune synthesize", lambda: synthesize(workspace, config, progress=False)),
        ("ragtune train", lambda: train_adapter(workspace, config, progress=False)),
    ]
    for needed_for, call in calls:
        with pytest.raises(MissingExtraError, match=f"^{needed_for} needs the train extra"):
            call()
    assert list(workspace.root.iterdir()) == []


def test_evaluating_checks_the_eval_extra_first(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, tmp_path: Path
) -> None:
    from ragtune.eval.evaluation import EvalSettings, evaluate, open_systems

    _missing(monkeypatch, "sentence_transformers")
    message = re.escape(
        "ragtune eval needs the eval extra (sentence_transformers is not installed): "
        "pip install 'ragtune[eval]'"
    )
    with pytest.raises(MissingExtraError, match=message):
        evaluate(workspace.root, tmp_path / "no-questions.json")
    with pytest.raises(MissingExtraError, match=message):
        open_systems(workspace, EvalSettings())


def test_the_cli_reports_a_missing_extra_as_one_line(
    monkeypatch: pytest.MonkeyPatch, workspace: Workspace, cli_runner: CliRunner
) -> None:
    from ragtune.cli import cli

    _missing(monkeypatch, "networkx")
    result = cli_runner.invoke(cli, ["index", str(workspace.root)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: ragtune index needs the train extra (networkx is not installed): "
        "pip install 'ragtune[train]'"
    ]
