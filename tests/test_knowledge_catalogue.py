"""Knowledge answers reduce to keypad digits, from whatever form a CSV holds them in."""

from __future__ import annotations

import pytest

from ivr.knowledge import CATALOGUE, AnswerFormatError, KnowledgeOutcome, KnowledgePolicy, NotEnoughQuestions
from ivr.knowledge import normalise_date, question


@pytest.mark.parametrize(
    "written",
    ["15/03/1987", "15-03-1987", "15.03.1987", "15031987", "1987-03-15", "1987/03/15", "19870315", " 15/3/1987 "],
)
def test_dates_in_common_forms_become_ddmmyyyy(written: str) -> None:
    assert normalise_date(written) == "15031987"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("03/15/1987", "real calendar date"),  # month-first is not guessed at
        ("31/02/1990", "real calendar date"),
        ("15 March 1987", "not a date"),
        ("1503198", "not a date"),
        ("01/01/1850", "year outside"),
        ("01/01/2999", "year outside"),
    ],
)
def test_impossible_or_ambiguous_dates_are_refused_without_echoing_them(written: str, problem: str) -> None:
    with pytest.raises(AnswerFormatError, match=problem) as refused:
        normalise_date(written)
    assert written.strip() not in str(refused.value)


def test_last_four_questions_keep_only_the_last_four_digits() -> None:
    for key in ("doc_last4", "card_last4"):
        assert question(key).normalise("1.020.304.050") == "4050"
        assert question(key).normalise("4050") == "4050"
        assert question(key).normalise("4111 1111 1111 1234") == "1234"
        with pytest.raises(AnswerFormatError, match="at least 4"):
            question(key).normalise("12-3")


def test_postal_codes_must_be_keyable_digits() -> None:
    postal = question("postal_code")
    assert postal.normalise("110 231") == "110231" and postal.normalise("06600") == "06600"
    with pytest.raises(AnswerFormatError, match="letters"):
        postal.normalise("SW1A 1AA")
    with pytest.raises(AnswerFormatError, match="3 to 10"):
        postal.normalise("12")


def test_keypad_entries_are_compared_as_digits() -> None:
    assert question("dob").normalise_entry("15031987#") == "15031987"
    assert question("card_last4").normalise_entry("*1234#") == "1234"


def test_the_catalogue_has_four_knowledge_questions_a_pin_and_refuses_unknown_ones() -> None:
    assert list(CATALOGUE) == ["dob", "doc_last4", "card_last4", "postal_code", "pin"]
    assert [k for k, q in CATALOGUE.items() if q.asked_as_knowledge] == ["dob", "doc_last4", "card_last4", "postal_code"]
    assert (question("dob").min_digits, question("dob").max_digits) == (8, 8)
    with pytest.raises(KeyError, match="mother"):
        question("mothers_maiden_name")


# --- N of M -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("results", "outcome"),
    [
        ([], KnowledgeOutcome.UNDECIDED),
        ([True], KnowledgeOutcome.UNDECIDED),
        ([True, True], KnowledgeOutcome.PASSED),  # no need to ask the third
        ([False, True], KnowledgeOutcome.UNDECIDED),
        ([False, False], KnowledgeOutcome.FAILED),  # cannot reach 2 of 3 any more
        ([True, False, False], KnowledgeOutcome.FAILED),
        ([False, True, True], KnowledgeOutcome.PASSED),
    ],
)
def test_two_of_three_decides_as_early_as_possible(results: list[bool], outcome: KnowledgeOutcome) -> None:
    assert KnowledgePolicy(ask=3, required=2).outcome(results) is outcome


def test_all_of_fewer_questions_when_fewer_are_on_file() -> None:
    policy = KnowledgePolicy(ask=3, required=2)
    chosen = policy.choose(["dob", "postal_code"])
    assert sorted(chosen) == ["dob", "postal_code"]
    assert policy.outcome([True, False], asked=len(chosen)) is KnowledgeOutcome.FAILED
    assert policy.outcome([True, True], asked=len(chosen)) is KnowledgeOutcome.PASSED
    with pytest.raises(NotEnoughQuestions, match="1 knowledge answers on file"):
        policy.choose(["dob"])


def test_questions_are_chosen_at_random() -> None:
    policy = KnowledgePolicy(ask=2, required=1)
    keys = [k for k, q in CATALOGUE.items() if q.asked_as_knowledge]
    picks = {tuple(sorted(policy.choose(keys))) for _ in range(200)}
    assert len(picks) == 6  # all C(4,2) pairs show up
    assert all(len(set(p)) == 2 for p in picks)


def test_an_impossible_policy_is_refused() -> None:
    with pytest.raises(ValueError):
        KnowledgePolicy(ask=2, required=3)
    with pytest.raises(ValueError):
        KnowledgePolicy(ask=2, required=0)


def test_a_pin_is_four_to_eight_digits() -> None:
    pin = question("pin")
    assert pin.normalise("0042") == "0042"
    for bad in ("123", "123456789", "12a4", "12 34"):
        with pytest.raises(AnswerFormatError, match="4 to 8 digits"):
            pin.normalise(bad)
