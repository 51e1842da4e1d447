"""Fixtures shared by tests/ and bench/: an isolated model cache and the test models."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent / "shared" / "data"
LOCOMO_DEV = SHARED_DATA / "locomo" / "locomo_dev.json"


#: Fixtures that load the real embedded model: only tests marked `slow` may use them, directly
#: or through another fixture, so that `make check` never loads it.
SLOW_FIXTURES = frozenset({"embedded_model"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a fast test that depends on a slow fixture (the tiers would leak)."""
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
        raise AssertionError(
            f"{item.nodeid} loads the embedded model but is not marked slow: mark it "
            "@pytest.mark.slow, or use the tiny model (tiny_model_dir)"
        )

    embedded.ensure_embedded_model = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        embedded.ensure_embedded_model = original


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point RAGTUNE_CACHE at a fresh folder, so tests never read or write the user's cache
    and the embedded model is converted once per test session (the first-load path)."""
    cache = tmp_path_factory.mktemp("ragtune-cache")
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
def embedded_model(isolated_cache: Path):  # type: ignore[no-untyped-def]
    """The embedded SmolLM2, converted into the session's cache (slow: about 30 s once)."""
    from ragtune.llm.embedded import ensure_embedded_model

    return ensure_embedded_model()


@pytest.fixture(scope="session")
def locomo_dev() -> Path:
    """The LoCoMo dev conversations from ../shared/data."""
    if not LOCOMO_DEV.is_file():
        pytest.skip(f"LoCoMo dev data not found at {LOCOMO_DEV}")
    return LOCOMO_DEV
