"""Questions from first-person sentences (`ragtune.synth.language`) and their rewordings
(`ragtune.synth.phrasing`), on sentences of LoCoMo's conversations (conv-26: Caroline and
Melanie) and on notes with no speaker, whose questions address the memory's owner as "you"."""

from __future__ import annotations

import pytest

from ragtune.synth.language import (
    Fact,
    first_person_facts,
    inflect,
    mention_clause,
    named_facts,
    second_person,
    third_person,
)
from ragtune.synth.phrasing import clause, lower_first, paraphrases, the

# --- first-person facts of a named speaker ---------------------------------------------------


def test_a_place_someone_went_to_is_asked_where_and_when() -> None:
    sentence = "I went to a LGBTQ support group yesterday and it was so powerful."
    assert first_person_facts(sentence, "Caroline") == [
        Fact(
            question="Where did Caroline go?",
            answer="A LGBTQ support group",
            when="When did Caroline go to a LGBTQ support group?",
            happened="Caroline went to a LGBTQ support group",
        )
    ]


def test_an_ongoing_activity_is_asked_with_has_been() -> None:
    assert first_person_facts("I've been researching adoption agencies.", "Caroline") == [
        Fact(question="What has Caroline been researching?", answer="Adoption agencies")
    ]


def test_a_phrasal_verb_keeps_its_particle() -> None:
    facts = first_person_facts("I just signed up for a pottery class, it is so fun.", "Melanie")
    assert len(facts) == 1
    assert facts[0].question == "What did Melanie sign up for?"
    assert facts[0].answer == "A pottery class"
    assert facts[0].happened == "Melanie signed up for a pottery class"


@pytest.mark.parametrize(
    ("sentence", "speaker", "expected"),
    [
        (
            "Yeah, I painted that lake sunrise last year!",
            "Melanie",
            Fact(
                "What did Melanie paint?",
                "The lake sunrise",
                "When did Melanie paint the lake sunrise?",
                "Melanie painted the lake sunrise",
            ),
        ),
        (
            "I ran a charity race for mental health last Saturday – it was really rewarding.",
            "Melanie",
            Fact(
                "What did Melanie run?",
                "A charity race for mental health",
                "When did Melanie run a charity race for mental health?",
                "Melanie ran a charity race for mental health",
            ),
        ),
        (
            "Last Friday, I went to an LGBTQ+ counseling workshop and it was really enlightening.",
            "Caroline",
            Fact(
                "Where did Caroline go?",
                "An LGBTQ+ counseling workshop",
                "When did Caroline go to an LGBTQ+ counseling workshop?",
                "Caroline went to an LGBTQ+ counseling workshop",
            ),
        ),
        (
            "I lost my job last week.",
            "Melanie",
            Fact(
                "What did Melanie lose?",
                "Their job",
                "When did Melanie lose their job?",
                "Melanie lost their job",
            ),
        ),
        (
            "So I went to the beach.",
            "Melanie",
            Fact(
                "Where did Melanie go?",
                "The beach",
                "When did Melanie go to the beach?",
                "Melanie went to the beach",
            ),
        ),
        (
            "I was painting a sunset yesterday.",
            "Melanie",
            Fact("What was Melanie painting?", "A sunset", "When was Melanie painting a sunset?"),
        ),
        (
            "I'm going camping next month.",
            "Melanie",
            Fact(None, "Camping", "When is Melanie going camping?"),
        ),
        ("I play the violin.", "Melanie", Fact("What does Melanie play?", "The violin")),
        ("I work at a hospital.", "Melanie", Fact("Where does Melanie work?", "A hospital")),
        ("My husband is John.", "Melanie", Fact("Who is Melanie's husband?", "John")),
        (
            "My goal is to give kids a loving home.",
            "Caroline",
            Fact("What is Caroline's goal?", "To give kids a loving home"),
        ),
    ],
)
def test_facts_of_conversation_sentences(sentence: str, speaker: str, expected: Fact) -> None:
    assert first_person_facts(sentence, speaker) == [expected]


def test_a_time_expression_at_the_start_does_not_hide_the_clause() -> None:
    """LoCoMo abbreviates days ("Last Fri"); the clause after it is still the speaker's."""
    facts = first_person_facts("Last Fri I finally took my kids to a pottery workshop.", "Melanie")
    assert [f.when for f in facts] == ["When did Melanie take their kids to a pottery workshop?"]
    assert facts[0].happened == "Melanie took their kids to a pottery workshop"
    assert facts[0].question is not None and "take" in facts[0].question


def test_a_favorite_thing_is_asked_what_not_who() -> None:
    """A capitalized title is not a person: "Charlotte's Web" is a book."""
    assert first_person_facts("My favorite book is Charlotte's Web.", "Melanie") == [
        Fact("What is Melanie's favorite book?", "Charlotte's Web")
    ]
    assert first_person_facts("My favorite book is Charlotte's Web.", None) == [
        Fact("What is your favorite book?", "Charlotte's Web")
    ]


def test_a_dropped_subject_is_restored() -> None:
    facts = first_person_facts("Went to the beach yesterday.", "Melanie")
    assert [(f.question, f.answer) for f in facts] == [("Where did Melanie go?", "The beach")]


# --- sentences that give nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "I think it's great.",
        "I love painting.",
        "I feel so grateful for all the support.",
        "I want to help people who have gone through the same things as me.",
        "I'm always working on it.",  # a pronoun, not an object
        "I'm reading a book about you.",  # about the listener
        "We went hiking.",  # not "I"
        "Thanks, Caroline!",
        "It's a journey for me.",
        "I won't give up on my dreams.",  # "won't" is not the verb "win"
        "I don’t quit.",
        "",
    ],
)
def test_sentences_without_a_fact_give_nothing(sentence: str) -> None:
    assert first_person_facts(sentence, "Melanie") == []


def test_a_relative_clause_is_not_the_speakers_statement() -> None:
    """ "These figurines I bought yesterday remind me ..." is about the figurines; "I bought"
    is a relative clause, which gives no "bought remind" fact."""
    sentence = "These figurines I bought yesterday remind me of family love."
    facts = first_person_facts(sentence, "Melanie")
    for fact in facts:
        text = " ".join(filter(None, [fact.question, fact.answer, fact.when, fact.happened]))
        assert "remind" not in text.lower() and "bought" not in text.lower()
        assert "buy" not in text.lower()


def test_a_pronoun_object_gives_nothing() -> None:
    """ "I chose them 'cause they help LGBTQ+ folks" has a pronoun for its object."""
    assert (
        first_person_facts("I chose them 'cause they help LGBTQ+ folks with adoption.", "Caroline")
        == []
    )


def test_a_passive_sentence_is_not_read_as_active() -> None:
    sentence = "I've been blessed with loads of love and support throughout this journey."
    facts = first_person_facts(sentence, "Caroline")
    assert facts == [] or [f.question for f in facts] == ["What has Caroline been blessed with?"]


def test_a_participle_clause_leaves_no_dangling_preposition() -> None:
    facts = first_person_facts("I've had a lot of things happening to me.", "Melanie")
    assert not any((f.question or "").endswith((" to them?", " to me?")) for f in facts)


def test_a_phrasal_into_is_not_a_place() -> None:
    sentence = "Lately, I've been looking into counseling and mental health as a career."
    facts = first_person_facts(sentence, "Caroline")
    assert not any((f.question or "").startswith("Where") for f in facts)
    assert all(f.question == "What has Caroline been looking into?" for f in facts)


def test_a_hyphenated_me_is_not_a_pronoun() -> None:
    facts = first_person_facts("So I'm carving out some me-time each day.", "Melanie")
    assert [(f.question, f.answer) for f in facts] == [
        ("What is Melanie carving out?", "Some me-time each day")
    ]


# --- notes with no speaker: the owner is "you" -----------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "question", "answer", "happened"),
    [
        (
            "I went to a LGBTQ support group yesterday and it was so powerful.",
            "Where did you go?",
            "A LGBTQ support group",
            "You went to a LGBTQ support group",
        ),
        (
            "I just signed up for a pottery class, it is so fun.",
            "What did you sign up for?",
            "A pottery class",
            "You signed up for a pottery class",
        ),
        ("I lost my job last week.", "What did you lose?", "Your job", "You lost your job"),
        (
            "I've been researching adoption agencies.",
            "What have you been researching?",
            "Adoption agencies",
            None,
        ),
        ("I play the violin.", "What do you play?", "The violin", None),
        ("I'm learning the guitar.", "What are you learning?", "The guitar", None),
        ("I was painting a sunset yesterday.", "What were you painting?", "A sunset", None),
        ("My husband is John.", "Who is your husband?", "John", None),
    ],
)
def test_notes_are_asked_about_you(
    sentence: str, question: str, answer: str, happened: str | None
) -> None:
    facts = first_person_facts(sentence, None)
    assert [(f.question, f.answer, f.happened) for f in facts] == [(question, answer, happened)]


def test_notes_ask_when_you_did_it() -> None:
    (fact,) = first_person_facts("Yesterday I bought a new car.", None)
    assert fact == Fact(
        "What did you buy?", "A new car", "When did you buy a new car?", "You bought a new car"
    )


def test_a_counted_object_is_also_asked_how_many() -> None:
    facts = first_person_facts("I planted 23 quince trees in the community garden.", None)
    assert [(f.question, f.answer) for f in facts] == [
        ("What did you plant?", "23 quince trees"),
        ("How many quince trees did you plant?", "23"),
    ]


def test_a_long_object_is_cut_at_its_last_short_prepositional_phrase() -> None:
    sentence = "I hiked to the summit of Mount Drevald with my friend Aurelio and his dog."
    (fact,) = first_person_facts(sentence, None)
    assert (fact.question, fact.answer) == ("Where did you hike?", "The summit of Mount Drevald")


# --- facts about someone named ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "speaker", "names", "expected"),
    [
        (
            "My neighbour Quillon Varga keeps 37 ferrets in his garage.",
            None,
            ["Quillon Varga"],
            [
                ("Who is your neighbour?", "Quillon Varga"),
                ("What does Quillon Varga keep?", "37 ferrets in his garage"),
                ("How many ferrets does Quillon Varga keep?", "37"),
            ],
        ),
        (
            "My cat Fennimore only eats smoked mackerel.",
            None,
            ["Fennimore"],
            [
                ("What is the name of your cat?", "Fennimore"),
                ("What does Fennimore eat?", "Smoked mackerel"),
            ],
        ),
        (
            "Yesterday my friend Sarah painted our kitchen.",
            "Caroline",
            ["Sarah"],
            [
                ("Who is Caroline's friend?", "Sarah"),
                ("What did Sarah paint?", "Their kitchen"),
            ],
        ),
        (
            "My cousin Talvi Orsk moved to Mervaskal.",
            None,
            ["Talvi Orsk", "Mervaskal"],
            [("Who is your cousin?", "Talvi Orsk"), ("Where did Talvi Orsk move?", "Mervaskal")],
        ),
    ],
)
def test_named_facts(
    sentence: str, speaker: str | None, names: list[str], expected: list[tuple[str, str]]
) -> None:
    assert [(f.question, f.answer) for f in named_facts(sentence, speaker, names)] == expected


@pytest.mark.parametrize(
    ("sentence", "names"),
    [
        ("Caroline went to the park.", ["Caroline"]),  # the speaker: a first-person fact
        ("We met the concert crowd there.", ["concert"]),  # not a name
        ("Thanks, Jon!", ["Jon"]),  # no clause
        ("The gift Jon bought was lovely.", ["Jon"]),  # a relative clause
        ("I lost my job at Door Dash.", ["Door Dash"]),  # "job at" is not a role
    ],
)
def test_sentences_without_a_named_fact_give_nothing(sentence: str, names: list[str]) -> None:
    assert named_facts(sentence, "Caroline", names) == []


# --- pronouns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "third", "second"),
    [
        ("my kids and me", "their kids and them", "your kids and you"),
        ("My kids", "their kids", "your kids"),
        ("our family and us", "their family and them", "your family and you"),
        ("a gift for myself", "a gift for themselves", "a gift for yourself"),
        ("a trip for ourselves", "a trip for themselves", "a trip for yourselves"),
        ("that one is mine", "that one is theirs", "that one is yours"),
        ("a house of ours", "a house of theirs", "a house of yours"),
        ("we", "they", "you"),
    ],
)
def test_first_person_pronouns_are_turned(text: str, third: str, second: str) -> None:
    assert third_person(text) == third
    assert second_person(text) == second


@pytest.mark.parametrize(
    "text",
    [
        "a mystery museum",
        "Iowa and India",
        "the usual route",
        "the US open",
        "Caroline's painting",
        "some me-time",
        "a we-are-family song",
    ],
)
def test_words_that_only_contain_a_pronoun_are_kept(text: str) -> None:
    assert third_person(text) == text
    assert second_person(text) == text


def test_verbs_are_inflected_from_the_dictionary() -> None:
    assert inflect("go", "VBD") == "went"
    assert inflect("sign", "VBD") == "signed"
    assert inflect("run", "VBG") == "running"
    assert inflect("paint", "VBZ") == "paints"
    assert inflect("xyzzy", "VBD") == "xyzzy"  # unknown: unchanged


# --- phrasing --------------------------------------------------------------------------------


def test_paraphrases_reword_a_question_in_a_fixed_order() -> None:
    question = "Where did Caroline go?"
    anchor = "In the conversation on 8 May 2023"
    assert paraphrases(question, 4, anchor=anchor, who="Melanie") == [
        "Where did Caroline go?",
        "In the conversation on 8 May 2023, where did Caroline go?",
        "From what Melanie said, where did Caroline go?",
        "Do you remember: where did Caroline go?",
    ]
    assert paraphrases(question, 2, anchor=anchor, who="Melanie") == [
        "Where did Caroline go?",
        "In the conversation on 8 May 2023, where did Caroline go?",
    ]
    assert paraphrases(question, 2, anchor=None, who="Melanie") == [
        "Where did Caroline go?",
        "From what Melanie said, where did Caroline go?",
    ]
    assert paraphrases(question, 5, anchor=None, who=None) == [
        "Where did Caroline go?",
        "Do you remember: where did Caroline go?",
    ]
    assert paraphrases(question, 1, anchor=anchor, who="Melanie") == [question]
    note = paraphrases("What did you buy?", 2, anchor="In your note of 14 January 2024", who=None)
    assert note == ["What did you buy?", "In your note of 14 January 2024, what did you buy?"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where did Caroline go?", "where did Caroline go?"),
        ("What is Melanie's goal?", "what is Melanie's goal?"),
        ("I went to the park", "I went to the park"),
        ("LGBTQ people", "LGBTQ people"),
        ("McDonald's menu", "McDonald's menu"),
        ("A", "a"),
        ("", ""),
    ],
)
def test_lower_first(text: str, expected: str) -> None:
    assert lower_first(text) == expected


@pytest.mark.parametrize(
    ("title", "named"),
    [
        ("support group", "the support group"),
        ("adoption agencies", "the adoption agencies"),
        ("the beach", "the beach"),
        ("Caroline", "Caroline"),
        ("Tagus Kayak Club", "Tagus Kayak Club"),
        ("LGBTQ community", "LGBTQ community"),
    ],
)
def test_the_names_an_entity(title: str, named: str) -> None:
    assert the(title) == named


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("You went to a LGBTQ support group", "you went to a LGBTQ support group"),
        ("Caroline went to a LGBTQ support group", "Caroline went to a LGBTQ support group"),
        ("Your sister visited", "Your sister visited"),
        ("Youth groups met", "Youth groups met"),
    ],
)
def test_clause_lowercases_only_an_initial_you(statement: str, expected: str) -> None:
    assert clause(statement) == expected


@pytest.mark.parametrize(
    ("sentence", "title", "clause"),
    [
        (
            "Oh, and btw - I've been working hard on my online store and just teamed up with a "
            "local artist for some cool designs.",
            "online store",
            "Working hard on their online store",
        ),
        (
            "I'm over the moon because now I can expand my clothing store.",
            "clothing store",
            "Now they can expand their clothing store",
        ),
        (
            'We just did a contemporary piece called "Finding Freedom" last week.',
            "contemporary piece",
            'They just did a contemporary piece called "Finding Freedom" last week',
        ),
        ("Those dreams, I will keep chasing.", "dreams", "Those dreams, they will keep chasing."),
        ("Nothing about it here.", "store", None),
    ],
)
def test_a_mention_is_answered_with_the_clause_naming_it(
    sentence: str, title: str, clause: str | None
) -> None:
    assert mention_clause(sentence, title, "Gina") == clause


# --- statements: each fact said as a sentence about the person (what profiles restate) -------


@pytest.mark.parametrize(
    ("sentence", "speaker", "statement", "about"),
    [
        (
            "I went to a LGBTQ support group yesterday and it was so powerful.",
            "Caroline",
            "Caroline went to a LGBTQ support group",
            "Caroline",
        ),
        (
            "I've been researching adoption agencies.",
            "Caroline",
            "Caroline has been researching adoption agencies",
            "Caroline",
        ),
        (
            "I just signed up for a pottery class.",
            "Melanie",
            "Melanie signed up for a pottery class",
            "Melanie",
        ),
        ("I'm starting a dance studio.", "Jon", "Jon is starting a dance studio", "Jon"),
        (
            "My favorite dance is contemporary.",
            "Gina",
            "Gina's favorite dance is contemporary",
            "Gina",
        ),
        ("I play the violin every evening.", None, "You play the violin every evening", None),
        ("My old car was a red Volvo.", None, "Your old car was a red Volvo", None),
    ],
)
def test_each_fact_is_stated_about_the_person_by_name(
    sentence: str, speaker: str | None, statement: str, about: str | None
) -> None:
    facts = first_person_facts(sentence, speaker)
    assert facts, sentence
    assert {fact.statement for fact in facts} == {statement}
    assert {fact.about for fact in facts} == {about}


def test_facts_about_someone_named_are_stated_about_them() -> None:
    sentence = "My neighbour Quillon Varga keeps 37 ferrets."
    facts = named_facts(sentence, "Ana", ["Quillon Varga"])
    said = {(fact.question, fact.statement, fact.about) for fact in facts}
    assert said == {
        ("Who is Ana's neighbour?", "Ana's neighbour is Quillon Varga", "Ana"),
        ("What does Quillon Varga keep?", "Quillon Varga keeps 37 ferrets", "Quillon Varga"),
        (
            "How many ferrets does Quillon Varga keep?",
            "Quillon Varga keeps 37 ferrets",
            "Quillon Varga",
        ),
    }
    owner = named_facts(sentence, None, ["Quillon Varga"])
    assert owner[0].statement == "Your neighbour is Quillon Varga" and owner[0].about is None
