"""The extension packages install, import, and keep to their public names."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest


def test_langchain_package_imports_with_pinned_public_names() -> None:
    import langchain_ragtune

    assert sorted(langchain_ragtune.__all__) == [
        "ChatRagTune",
        "LangChainTeacher",
        "RagTuneMemory",
        "RagTuneRetriever",
        "__version__",
        "ingest_documents",
    ]
    assert langchain_ragtune.__version__ == importlib.metadata.version("langchain-ragtune")


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("llama_index.llms.ragtune", ["LlamaIndexTeacher", "RagTuneLLM", "__version__"]),
        ("llama_index.retrievers.ragtune", ["RagTuneRetriever", "__version__", "ingest_documents"]),
    ],
)
def test_llamaindex_namespace_packages_import_beside_llama_index_core(
    module: str, names: list[str]
) -> None:
    import llama_index.core  # the namespace must stay shared with LlamaIndex's own packages

    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == names
    assert imported.__version__ == importlib.metadata.version("llama-index-ragtune")
    assert llama_index.core.__version__


@pytest.mark.parametrize("distribution", ["langchain-ragtune", "llama-index-ragtune"])
def test_extensions_depend_on_ragtune(distribution: str) -> None:
    requires = importlib.metadata.requires(distribution) or []
    assert any(r.split(";")[0].strip() == "ragtune" for r in requires)


def test_core_imports_neither_langchain_nor_llama_index() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ragtune, ragtune.corpus, ragtune.llm, ragtune.cli, ragtune.config; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('langchain_core', 'llama_index', 'torch', 'transformers')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
