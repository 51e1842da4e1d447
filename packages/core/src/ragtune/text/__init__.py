"""The English helpers every stage may import: word lists (`lexicon`), name normalization
(`names`), dates and time expressions (`dates`), sentences of a text unit (`sentences`), content
terms and stemming (`terms`) and `shorten`. A leaf of the package: it imports nothing of ragtune
but the corpus types."""
