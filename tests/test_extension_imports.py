"""The extension packages install, import, and keep to their public names."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest

from support import modules_after


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
    loaded = modules_after(
        "import ragtune, ragtune.corpus, ragtune.llm, ragtune.cli, ragtune.config"
    )
    heavy = ("langchain_core", "llama_index", "torch", "transformers")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
