"""Token-aware chunking: properties over random texts, and the boundary and metadata rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from ragtune.corpus import Document, TextUnit, Turn, chunk_document, chunk_documents
from ragtune.corpus.chunking import check_chunking
from ragtune.errors import ConfigError
from ragtune.llm.tokenizer import ModelTokenizer, load_tokenizer

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, database=None)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> ModelTokenizer:
    return ModelTokenizer(Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json")))


def document(text: str, **fields: object) -> Document:
    source = str(fields.pop("source", "test.md"))
    return Document(
        id=Document.make_id(source, text),
        title=str(fields.pop("title", "Test")),
        text=text,
        source=source,
        **fields,  # type: ignore[arg-type]
    )


def token_range(unit: TextUnit, spans: list[tuple[int, int]]) -> set[int]:
    """Indexes of the non-empty tokens whose characters lie inside the unit."""
    return {
        index
        for index, (start, end) in enumerate(spans)
        if end > start and start < unit.end_char and end > unit.start_char
    }


# Texts as the loaders make them: stripped, words and punctuation separated by short whitespace
# (at most 3 whitespace tokens in a row, below the 4/5 of the smallest window that a unit keeps;
# longer runs are covered by test_whitespace_only_window_makes_no_empty_unit). ASCII, so that
# every token is a whole character; UNICODE_TEXTS below adds multi-byte characters.
WORDS = st.sampled_from(
    ["the", "fox", "Caroline", "went", "to", "a", "support", "group", "42", "2023", "lake"]
)
PUNCTUATION = st.sampled_from([".", ",", "!", "?", ";", ":", "-", "'", '"', "(", ")"])
SEPARATORS = st.sampled_from(["", " ", " ", " ", "\n", "\n\n", "\t", " \n "])


def joined(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return (
        st.lists(st.tuples(pieces, SEPARATORS), min_size=1, max_size=120)
        .map(lambda pairs: "".join(piece + separator for piece, separator in pairs).strip())
        .filter(bool)
    )


TEXTS = joined(st.one_of(WORDS, WORDS, PUNCTUATION))
SIZES = st.integers(min_value=8, max_value=40)


@st.composite
def size_and_overlap(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(SIZES)
    overlap = draw(st.integers(min_value=0, max_value=size - 1))
    return size, overlap


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
def test_units_never_exceed_size_tokens(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    units = chunk_document(document(text), tokenizer, size=size, overlap=overlap)

    spans = tokenizer.token_spans(text)
    assert units
    for unit in units:
        assert 1 <= unit.n_tokens <= size
        # n_tokens counts the tokens of the unit's text; whitespace tokens at its edges are not
        # part of it.
        assert len(token_range(unit, spans)) == unit.n_tokens
    # The first window is cut at a boundary only within its last fifth: the tokens it spans,
    # its first unit plus the whitespace tokens right after it, reach that far.
    window_end = max(token_range(units[0], spans)) + 1
    while window_end < len(spans) and text[slice(*spans[window_end])].isspace():
        window_end += 1
    assert window_end >= min(size, len(spans)) or window_end > size * 4 // 5


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
def test_unit_text_is_the_exact_stripped_substring(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    doc = document(text)

    for unit in chunk_document(doc, tokenizer, size=size, overlap=overlap):
        assert unit.text == doc.text[unit.start_char : unit.end_char]
        assert unit.text
        assert unit.text == unit.text.strip()
        assert 0 <= unit.start_char < unit.end_char <= len(text)
        assert unit.document_id == doc.id


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
# A window that starts on a whitespace token strips to the next window's start.
@example(text="the\nthethethethe", chunking=(8, 7))
def test_units_are_in_order_with_increasing_start(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    units = chunk_document(document(text), tokenizer, size=size, overlap=overlap)

    assert [u.chunk_index for u in units] == list(range(len(units)))
    for before, after in itertools.pairwise(units):
        assert before.start_char < after.start_char


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
def test_consecutive_units_overlap_by_at_most_overlap_tokens(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    spans = tokenizer.token_spans(text)
    units = chunk_document(document(text), tokenizer, size=size, overlap=overlap)

    for before, after in itertools.pairwise(units):
        shared = token_range(before, spans) & token_range(after, spans)
        assert len(shared) <= overlap
        if overlap == 0:
            assert before.end_char <= after.start_char


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
def test_units_cover_every_non_whitespace_character(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    units = chunk_document(document(text), tokenizer, size=size, overlap=overlap)

    covered = [False] * len(text)
    for unit in units:
        for offset in range(unit.start_char, unit.end_char):
            covered[offset] = True
    missing = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert missing == []


@PROPERTY_SETTINGS
@given(text=TEXTS, chunking=size_and_overlap())
# Two windows that differ only by whitespace tokens at their edges strip to the same unit.
@example(text="the\n\nthethethe .", chunking=(8, 7))
def test_unit_ids_are_stable_and_unique(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    doc = document(text)

    first = chunk_document(doc, tokenizer, size=size, overlap=overlap)
    second = chunk_document(doc, tokenizer, size=size, overlap=overlap)

    assert first == second
    assert len({u.id for u in first}) == len(first)
    assert all(u.id.startswith("tu-") for u in first)


UNICODE_TEXTS = joined(
    st.text(alphabet=st.sampled_from(list("abcxyz.,!?-éüßçñ中文😀")), min_size=1, max_size=8)
)


@PROPERTY_SETTINGS
@given(text=UNICODE_TEXTS, chunking=size_and_overlap())
def test_unicode_units_are_exact_substrings_within_size(
    tokenizer: ModelTokenizer, text: str, chunking: tuple[int, int]
) -> None:
    size, overlap = chunking
    doc = document(text)
    units = chunk_document(doc, tokenizer, size=size, overlap=overlap)

    assert units
    for unit in units:
        assert unit.n_tokens <= size
        assert unit.text == doc.text[unit.start_char : unit.end_char]
        assert unit.text == unit.text.strip()
    covered = set()
    for unit in units:
        covered.update(range(unit.start_char, unit.end_char))
    assert all(i in covered for i, char in enumerate(text) if not char.isspace())


# --- boundaries -------------------------------------------------------------------------------


def test_a_short_document_is_one_unit(tokenizer: ModelTokenizer) -> None:
    doc = document("Caroline went to the support group.")

    [unit] = chunk_document(doc, tokenizer, size=500, overlap=100)

    assert unit.text == doc.text
    assert (unit.start_char, unit.end_char) == (0, len(doc.text))
    assert unit.n_tokens == len(tokenizer.token_spans(doc.text))
    assert unit.chunk_index == 0


LINE = "The quick brown fox jumps over the lazy dog"  # no punctuation: only line ends break
LINES = "\n".join(f"{LINE} {n}" for n in range(40))


def test_units_end_at_line_ends_within_the_last_fifth(tokenizer: ModelTokenizer) -> None:
    text = LINES
    doc = document(text)
    spans = tokenizer.token_spans(text)
    size, overlap = 100, 10
    longest = max(len(tokenizer.token_spans(line + "\n")) for line in text.split("\n"))
    assert longest < size // 5  # a line end always lies in each window's last fifth

    units = chunk_document(doc, tokenizer, size=size, overlap=overlap)

    assert len(units) > 3
    for unit in units[:-1]:
        assert text[unit.end_char] == "\n", repr(text[unit.end_char - 20 : unit.end_char + 5])
        # Cutting at the line end costs at most a fifth of the window.
        assert unit.n_tokens > size - size // 5
    assert units[-1].end_char == len(text)
    assert len(spans) > size


def test_window_end_is_not_moved_back_beyond_the_last_fifth(tokenizer: ModelTokenizer) -> None:
    # One line end early in the window, none in its last fifth: the unit is cut at `size`.
    text = "Intro line\n" + " ".join(["fox"] * 200)
    doc = document(text)

    units = chunk_document(doc, tokenizer, size=40, overlap=0)

    assert units[0].n_tokens == 40
    assert "\n" in units[0].text
    assert not units[0].text.endswith("Intro line")


def test_unit_starts_snap_to_a_line_start_within_the_overlap(tokenizer: ModelTokenizer) -> None:
    text = LINES
    doc = document(text)
    size, overlap = 100, 40
    longest = max(len(tokenizer.token_spans(line + "\n")) for line in text.split("\n"))
    assert longest < overlap // 2  # a line start always lies in the first half of the overlap

    units = chunk_document(doc, tokenizer, size=size, overlap=overlap)

    assert len(units) > 3
    for unit in units[1:]:
        assert text[unit.start_char - 1] == "\n"
        assert unit.text.startswith(LINE)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("alpha" + "\n" * 30 + "beta", 10),  # a blank-line run longer than a window
        ("thethe ", 4),  # trailing whitespace (a Document built by hand)
    ],
    ids=["inner-whitespace-run", "trailing-whitespace"],
)
def test_whitespace_only_window_makes_no_empty_unit(
    tokenizer: ModelTokenizer, text: str, size: int
) -> None:
    doc = document(text)

    units = chunk_document(doc, tokenizer, size=size, overlap=0)

    for unit in units:
        assert unit.text, unit
        assert unit.start_char < unit.end_char, unit
    assert [u.text for u in units if u.text] == [u.text for u in units]


def test_no_overlap_means_adjacent_units(tokenizer: ModelTokenizer) -> None:
    text = " ".join(["word"] * 120)
    doc = document(text)
    spans = tokenizer.token_spans(text)

    units = chunk_document(doc, tokenizer, size=25, overlap=0)

    covered = [token_range(u, spans) for u in units]
    assert sum(u.n_tokens for u in units) == sum(len(tokens) for tokens in covered)
    assert not any(a & b for a, b in itertools.combinations(covered, 2))
    words = {i for i, (start, end) in enumerate(spans) if not text[start:end].isspace()}
    assert words <= set().union(*covered)
    for before, after in itertools.pairwise(units):
        assert text[before.end_char : after.start_char].strip() == ""


def test_load_tokenizer_from_hf_folder_matches_the_raw_tokenizer(
    tiny_model_dir: Path, tokenizer: ModelTokenizer
) -> None:
    loaded = load_tokenizer(f"hf:{tiny_model_dir}")
    text = "Melanie painted a sunrise by the lake.\nWhat did they talk about?"

    assert loaded.token_spans(text) == tokenizer.token_spans(text)
    assert chunk_document(document(text), loaded, size=8, overlap=2) == chunk_document(
        document(text), tokenizer, size=8, overlap=2
    )


# --- metadata ---------------------------------------------------------------------------------


def conversation_document() -> Document:
    lines = [
        ("D1:1", "Caroline", "Hey Mel! Good to see you! How have you been?"),
        ("D1:2", "Melanie", "Hey Caroline! I am swamped with the kids and work."),
        ("D1:3", "Caroline", "I went to a support group yesterday and it was so powerful."),
        ("D1:4", "Melanie", "Wow, that is cool! What happened there?"),
        ("D1:5", "Caroline", "The stories were so inspiring, I was so happy."),
        ("D1:6", "Caroline", "I also painted a sunrise by the lake."),
    ]
    rendered = [f"{speaker}: {text}" for _, speaker, text in lines]
    turns = []
    offset = 0
    for (dia_id, speaker, _), line in zip(lines, rendered, strict=True):
        turns.append(Turn(id=dia_id, speaker=speaker, start=offset, end=offset + len(line)))
        offset += len(line) + 1
    return document(
        "\n".join(rendered),
        source="conv.json#conv-1/session_1",
        timestamp="2023-05-08T13:56:00",
        turns=tuple(turns),
    )


def test_conversation_units_carry_the_turns_they_overlap(tokenizer: ModelTokenizer) -> None:
    doc = conversation_document()

    units = chunk_document(doc, tokenizer, size=40, overlap=8)

    assert len(units) > 2
    seen: list[str] = []
    for unit in units:
        expected = [t for t in doc.turns if t.start < unit.end_char and t.end > unit.start_char]
        assert unit.turn_ids == tuple(t.id for t in expected)
        assert unit.speakers == tuple(dict.fromkeys(t.speaker for t in expected))
        assert len(set(unit.speakers)) == len(unit.speakers)
        seen.extend(unit.turn_ids)
    assert set(seen) == {t.id for t in doc.turns}


def test_a_unit_over_a_whole_conversation_lists_every_turn(tokenizer: ModelTokenizer) -> None:
    doc = conversation_document()

    [unit] = chunk_document(doc, tokenizer, size=1000, overlap=0)

    assert unit.turn_ids == ("D1:1", "D1:2", "D1:3", "D1:4", "D1:5", "D1:6")
    assert unit.speakers == ("Caroline", "Melanie")


def test_units_of_a_note_have_no_turns(tokenizer: ModelTokenizer) -> None:
    [unit] = chunk_document(document("A plain note."), tokenizer, size=50, overlap=0)

    assert unit.turn_ids == ()
    assert unit.speakers == ()
    assert unit.timestamp is None


def test_timestamp_is_propagated_to_every_unit(tokenizer: ModelTokenizer) -> None:
    doc = conversation_document()

    units = chunk_document(doc, tokenizer, size=20, overlap=5)

    assert len(units) > 1
    assert {u.timestamp for u in units} == {"2023-05-08T13:56:00"}


def test_chunk_documents_chunks_each_document_in_order(tokenizer: ModelTokenizer) -> None:
    first = document("First document. " * 20, source="a.md")
    second = document("Second document. " * 20, source="b.md")

    units = chunk_documents([first, second], tokenizer, size=30, overlap=5)

    ids = [u.document_id for u in units]
    assert ids == sorted(ids, key=[first.id, second.id].index)
    assert set(ids) == {first.id, second.id}
    for doc in (first, second):
        own = [u for u in units if u.document_id == doc.id]
        assert own == chunk_document(doc, tokenizer, size=30, overlap=5)


def test_unit_id_depends_on_the_document(tokenizer: ModelTokenizer) -> None:
    [a] = chunk_document(document("Same text.", source="a.md"), tokenizer, size=50, overlap=0)
    [b] = chunk_document(document("Same text.", source="b.md"), tokenizer, size=50, overlap=0)

    assert a.text == b.text
    assert a.id != b.id


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "overlap", "words"),
    [
        (0, 0, "chunking.size must be at least 1 token, got 0"),
        (-5, 0, "chunking.size must be at least 1 token, got -5"),
        (100, 100, "chunking.overlap must be at least 0 and below chunking.size (100), got 100"),
        (100, 150, "below chunking.size (100), got 150"),
        (100, -1, "chunking.overlap must be at least 0"),
    ],
)
def test_check_chunking_refuses_bad_settings(size: int, overlap: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_chunking(size, overlap)

    assert words in str(caught.value)


def test_check_chunking_accepts_good_settings() -> None:
    check_chunking(1, 0)
    check_chunking(500, 100)
    check_chunking(500, 499)


def test_chunk_document_checks_its_settings(tokenizer: ModelTokenizer) -> None:
    with pytest.raises(ConfigError, match=r"chunking\.overlap"):
        chunk_document(document("text"), tokenizer, size=10, overlap=10)
    with pytest.raises(ConfigError, match=r"chunking\.size"):
        chunk_documents([document("text")], tokenizer, size=0, overlap=0)
