"""LoCoMo answer scoring (`ragtune.eval.locomo_scoring`) against hand-computed examples of the
official scorer's rules: normalization, stemmed token F1, each category's dispatch, and the
per-category summary. The arithmetic of every expected value is written next to it."""

from __future__ import annotations

import pytest

from ragtune.eval import (
    CATEGORY_NAMES,
    CategoryScores,
    abstains,
    normalize_answer,
    score_answer,
    summarize,
    token_f1,
)

# --- normalization --------------------------------------------------------------------------------


def test_normalization_lowercases_and_drops_punctuation_articles_and_and() -> None:
    # "The Cat, and a Dog!" -> lowercase "the cat, and a dog!" -> no punctuation
    # "the cat and a dog" -> the/and/a dropped -> "cat dog"
    assert normalize_answer("The Cat, and a Dog!") == "cat dog"
    assert normalize_answer("  An   apple\tpie ") == "apple pie"


def test_punctuation_is_deleted_without_leaving_a_space() -> None:
    assert normalize_answer("Self-care, isn't it?") == "selfcare isnt it"
    # Punctuation goes first, so "a-ha" becomes the word "aha" and is not an article.
    assert normalize_answer("a-ha") == "aha"


def test_articles_are_whole_words_only() -> None:
    assert normalize_answer("Theory and anthem") == "theory anthem"
    assert normalize_answer("the") == ""


def test_non_ascii_punctuation_is_kept() -> None:
    # Upstream deletes `string.punctuation` only: the curly apostrophe stays.
    assert normalize_answer("Caroline’s") == "caroline’s"
    assert token_f1("Caroline’s", "Caroline's") == 0.0  # "caroline’" vs "carolin"


def test_a_decomposed_accent_keeps_its_letter() -> None:
    # "a" + combining grave accent is one word for the `regex` package's \b, so it stays.
    assert normalize_answer("a\u0300 b") == "a\u0300 b"


# --- token F1 -------------------------------------------------------------------------------------


def test_token_f1_of_a_date_with_an_extra_word() -> None:
    # ["on", "7", "may", "2023"] vs ["7", "may", "2023"]: 3 shared,
    # precision 3/4, recall 3/3 -> F1 = 2 * 3/4 * 1 / (3/4 + 1) = 6/7
    assert token_f1("on 7 May 2023", "7 May 2023") == pytest.approx(6 / 7)


def test_token_f1_compares_stems() -> None:
    # "running" and "runs" both stem to "run".
    assert token_f1("running", "runs") == pytest.approx(1.0)
    assert token_f1("Paintings", "painting") == pytest.approx(1.0)


def test_token_f1_of_a_long_prediction() -> None:
    # "she went running in park" -> [she, went, run, in, park] vs [run]: 1 shared,
    # precision 1/5, recall 1 -> F1 = 2 * 1/5 / (6/5) = 1/3
    assert token_f1("She went running in the park", "running") == pytest.approx(1 / 3)


def test_token_f1_counts_repeated_words_once_per_occurrence() -> None:
    # [run, run] vs [run]: the multiset intersection holds one "run";
    # precision 1/2, recall 1 -> F1 = 2/3
    assert token_f1("run run", "run") == pytest.approx(2 / 3)


def test_token_f1_is_zero_without_shared_words_even_when_both_are_empty() -> None:
    assert token_f1("Paris", "London") == 0.0
    # Both normalize to "": upstream returns 0, not 1.
    assert token_f1("the", "a") == 0.0


# --- categories 2 and 4: plain F1 -----------------------------------------------------------------


def test_temporal_and_single_hop_use_plain_f1() -> None:
    assert score_answer("on 7 May 2023", "7 May 2023", 2) == pytest.approx(6 / 7)
    # The comma is punctuation: "7 may 2023" on both sides.
    assert score_answer("7 May, 2023", "7 May 2023", 2) == pytest.approx(1.0)
    # [beach, forest] vs [beach, mountain]: precision 1/2, recall 1/2 -> F1 = 1/2
    assert score_answer("the beach and the forest", "beach, mountains", 4) == pytest.approx(0.5)


def test_an_int_gold_answer_is_compared_as_text() -> None:
    assert score_answer("2022", 2022, 2) == pytest.approx(1.0)
    # [in, 2022] vs [2022]: precision 1/2, recall 1 -> F1 = 2/3
    assert score_answer("in 2022", 2022, 4) == pytest.approx(2 / 3)


def test_a_missing_gold_answer_is_an_error_outside_category_5() -> None:
    with pytest.raises(ValueError, match="category-4 question needs a gold answer"):
        score_answer("Paris", None, 4)


# --- category 1: multi-hop ------------------------------------------------------------------------


def test_multi_hop_averages_the_gold_parts() -> None:
    # gold parts: pottery, camping, painting; prediction parts: camping, pottery
    # pottery -> best 1 (pottery); camping -> best 1 (camping); painting -> 0
    # mean = (1 + 1 + 0) / 3 = 2/3
    assert score_answer("camping, pottery", "pottery, camping, painting", 1) == pytest.approx(2 / 3)


def test_multi_hop_scores_each_gold_part_against_the_best_prediction_part() -> None:
    # prediction (one part): "beach forest" -> [beach, forest]
    # gold "beach" -> [beach]: precision 1/2, recall 1 -> 2/3
    # gold "mountains" -> [mountain]: nothing shared -> 0
    # mean = (2/3 + 0) / 2 = 1/3 (the same strings score 1/2 as plain F1, see above)
    assert score_answer("the beach and the forest", "beach, mountains", 1) == pytest.approx(1 / 3)


def test_multi_hop_does_not_penalize_extra_prediction_parts() -> None:
    # Each gold part finds its exact match; "swimming" is never compared -> (1 + 1) / 2 = 1
    assert score_answer("pottery, camping, swimming", "pottery, camping", 1) == pytest.approx(1.0)


def test_multi_hop_counts_an_empty_gold_part_as_zero() -> None:
    # A trailing comma makes a third, empty gold part scoring 0 -> (1 + 1 + 0) / 3 = 2/3
    assert score_answer("pottery, camping", "pottery, camping,", 1) == pytest.approx(2 / 3)


# --- category 3: open-domain ----------------------------------------------------------------------


def test_open_domain_cuts_the_gold_answer_at_the_first_semicolon() -> None:
    gold = "Likely no; she prefers the city; she said so"
    # gold cut to "Likely no" -> [like, no] vs [like, no] -> 1
    assert score_answer("likely no", gold, 3) == pytest.approx(1.0)
    # Uncut (category 4): [like, no] vs [like, no, she, prefer, citi, she, said, so]:
    # 2 shared, precision 1, recall 2/8 -> F1 = 2 * 1/4 / (5/4) = 2/5
    assert score_answer("likely no", gold, 4) == pytest.approx(2 / 5)


# --- category 5: adversarial ----------------------------------------------------------------------


def test_adversarial_scores_an_abstention_as_one() -> None:
    assert abstains("Not mentioned in the conversation")
    assert abstains("NO INFORMATION AVAILABLE.")
    assert score_answer("That is not mentioned.", None, 5) == 1.0
    # The gold (adversarial) answer is not used.
    assert score_answer("Not mentioned", "self-care is important", 5) == 1.0


def test_adversarial_scores_anything_else_as_zero() -> None:
    # Only the exact phrases count.
    assert not abstains("It is not explicitly mentioned")
    assert not abstains("That was never mentioned")
    assert not abstains("No information is available")
    # Giving the adversarial answer scores 0, even though it equals the gold text.
    assert score_answer("self-care is important", "self-care is important", 5) == 0.0


# --- unknown categories ---------------------------------------------------------------------------


@pytest.mark.parametrize("category", [0, 6])
def test_an_unknown_category_is_an_error(category: int) -> None:
    with pytest.raises(ValueError, match=f"unknown LoCoMo category {category}"):
        score_answer("Paris", "Paris", category)


def test_category_names_follow_the_data_ids() -> None:
    assert CATEGORY_NAMES == {
        1: "multi-hop",
        2: "temporal",
        3: "open-domain",
        4: "single-hop",
        5: "adversarial",
    }


# --- summary --------------------------------------------------------------------------------------


def test_summarize_gives_means_counts_overall_and_abstention() -> None:
    scores = [(4, 1.0), (1, 1.0), (5, 1.0), (4, 0.0), (2, 0.25), (1, 0.5), (4, 0.5), (5, 0.0)]
    summary = summarize(scores)
    # category 1: (1 + 0.5) / 2 = 0.75; 2: 0.25 / 1; 4: (1 + 0 + 0.5) / 3 = 0.5; 5: (1 + 0) / 2
    assert summary.means == pytest.approx({1: 0.75, 2: 0.25, 4: 0.5, 5: 0.5})
    assert list(summary.means) == [1, 2, 4, 5]
    assert summary.counts == {1: 2, 2: 1, 4: 3, 5: 2}
    # overall pools the 6 questions of categories 1-4: (1 + 0.5 + 0.25 + 1 + 0 + 0.5) / 6
    # = 3.25 / 6 = 13/24 (the mean of the category means would be 0.5)
    assert summary.overall == pytest.approx(13 / 24)
    assert summary.abstention == pytest.approx(0.5)


def test_summarize_of_nothing() -> None:
    assert summarize([]) == CategoryScores(means={}, counts={}, overall=None, abstention=None)


def test_summarize_without_adversarial_questions_has_no_abstention_rate() -> None:
    summary = summarize([(2, 1.0), (3, 0.0)])
    assert summary.overall == pytest.approx(0.5)  # (1 + 0) / 2
    assert summary.abstention is None


def test_summarize_rejects_an_unknown_category() -> None:
    with pytest.raises(ValueError, match="unknown LoCoMo category 7"):
        summarize([(1, 1.0), (7, 0.5)])
