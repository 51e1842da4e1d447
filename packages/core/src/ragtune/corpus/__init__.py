"""The corpus: loaders for notes, JSONL records and LoCoMo conversations, and chunking."""

from ragtune.corpus.chunking import SpanTokenizer, chunk_document, chunk_documents
from ragtune.corpus.loading import CORPUS_FORMATS, CorpusFormat, detect_format, load_corpus
from ragtune.corpus.tables import read_documents, read_text_units, write_documents, write_text_units
from ragtune.corpus.types import Document, TextUnit, Turn

__all__ = [
    "CORPUS_FORMATS",
    "CorpusFormat",
    "Document",
    "SpanTokenizer",
    "TextUnit",
    "Turn",
    "chunk_document",
    "chunk_documents",
    "detect_format",
    "load_corpus",
    "read_documents",
    "read_text_units",
    "write_documents",
    "write_text_units",
]
