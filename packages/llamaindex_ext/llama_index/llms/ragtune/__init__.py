"""LlamaIndex LLM for ragtune (`llama_index.llms.ragtune`): a memory-tuned model
(`RagTuneLLM`), and any LlamaIndex LLM as ragtune's teacher (`LlamaIndexTeacher`)."""

from importlib.metadata import version

from llama_index.llms.ragtune.base import RagTuneLLM
from llama_index.llms.ragtune.teacher import LlamaIndexTeacher

__version__ = version("llama-index-ragtune")

__all__ = ["LlamaIndexTeacher", "RagTuneLLM", "__version__"]
