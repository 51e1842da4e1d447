"""Fixtures shared by tests/ and bench/: an isolated model cache and the test models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Under pytest-xdist each worker has one core of its own (`make test` runs two on 2 cores):
# torch, and the processes tests start, compute on one thread, or the workers' threads fight
# over the cores (measured: the full suite took twice as long). Set before torch is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
LOCOMO_DEV = SHARED_DATA / "locomo" / "locomo_dev.json"


#: Fixtures that load the real embedded model: only tests marked `slow` may use them, directly
#: or through another fixture, so that `make check` never loads it.
SLOW_FIXTURES = frozenset({"embedded_model"})


#: The longest tests (minutes, where the next take seconds) run first: under pytest-xdist one
#: worker trains the memorization memory while the other goes through the rest.
LONGEST_FIRST = ("tests/test_memorization.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a fast test that depends on a slow fixture (the tiers would leak); put the
    longest tests first."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))  # stable
    leaks = [
        f"{item.nodeid} (uses {', '.join(sorted(SLOW_FIXTURES & set(item.fixturenames)))})"
        for item in items
        if item.get_closest_marker("slow") is None
        and SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if leaks:
        raise pytest.UsageError(
            "tests not marked slow depend on a slow fixture: " + "; ".join(leaks)
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """While a test not marked `slow` runs (its fixtures included), loading the embedded model
    fails and names the test: a fast test that needs a model uses the tiny one."""
    if item.get_closest_marker("slow") is not None:
        yield
        return
    import ragtune.llm.embedded as embedded

    original = embedded.ensure_embedded_model

    def refuse(*args: object, **kwargs: object) -> object:
        embedded.find_embedded_gguf()  # a test of a missing package gets the real error
        raise AssertionError(
            f"{item.nodeid} loads the embedded model but is not marked slow: mark it "
            "@pytest.mark.slow, or use the tiny model (tiny_model_dir)"
        )

    embedded.ensure_embedded_model = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        embedded.ensure_embedded_model = original


def _run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that every pytest-xdist worker of this run shares (this run's own temporary
    folder without xdist): what is built there under a `filelock.FileLock` is built once."""
    return _run_dir(tmp_path_factory)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point RAGTUNE_CACHE at a fresh folder of this run, so tests never read or write the
    user's cache and the embedded model is converted once per run (the first-load path), by
    whichever worker needs it first."""
    cache = _run_dir(tmp_path_factory) / "ragtune-cache"
    cache.mkdir(exist_ok=True)
    previous = os.environ.get("RAGTUNE_CACHE")
    os.environ["RAGTUNE_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield cache
    if previous is None:
        os.environ.pop("RAGTUNE_CACHE", None)
    else:
        os.environ["RAGTUNE_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model folder (loadable as ``hf:<folder>``)."""
    from ragtune.testing import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def embedded_model(isolated_cache: Path, run_dir: Path):  # type: ignore[no-untyped-def]
    """The embedded SmolLM2, converted into the run's cache (slow: about 30 s, once per run:
    the first worker to need it converts it, the others wait and reuse it; all see the
    conversion this run did)."""
    import json

    from filelock import FileLock

    from ragtune.llm.embedded import EmbeddedModel, ensure_embedded_model

    record = run_dir / "embedded-model.json"
    with FileLock(str(run_dir / "embedded-model.lock")):
        if record.is_file():
            done = json.loads(record.read_text(encoding="utf-8"))
            return EmbeddedModel(Path(done["path"]), done["weights_sha256"], converted=True)
        model = ensure_embedded_model()
        done = {"path": str(model.path), "weights_sha256": model.weights_sha256}
        record.write_text(json.dumps(done), encoding="utf-8")
        return model


@pytest.fixture(scope="session")
def locomo_dev() -> Path:
    """The LoCoMo dev conversations from ../shared/data."""
    if not LOCOMO_DEV.is_file():
        pytest.skip(f"LoCoMo dev data not found at {LOCOMO_DEV}")
    return LOCOMO_DEV
