"""The decision policy: what happens after each factor, which rule decided, and bad policy files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.policy import (
    Action,
    DecisionContext,
    Factor,
    FactorAttempt,
    FactorOutcome,
    IdentityState,
    PolicyError,
    decide,
    load_policy,
    parse_policy,
)
from ivr.policy.schema import Policy

VOICE, OTP, KBA, PIN = Factor.VOICE, Factor.OTP, Factor.KBA, Factor.PIN
PASS, FAIL, INCONCLUSIVE = FactorOutcome.PASS, FactorOutcome.FAIL, FactorOutcome.INCONCLUSIVE
ALL = frozenset(Factor)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def enrolled(**changes: object) -> IdentityState:
    values: dict[str, object] = {"enrolled": True, "available": ALL}
    values.update(changes)
    return IdentityState(**values)  # type: ignore[arg-type]


def tried(
    *steps: tuple[Factor, FactorOutcome] | tuple[Factor, FactorOutcome, float],
) -> tuple[FactorAttempt, ...]:
    return tuple(FactorAttempt(s[0], s[1], s[2] if len(s) > 2 else None) for s in steps)  # type: ignore[misc]


GREY = FactorAttempt(VOICE, INCONCLUSIVE, 0.55, grey_band=True)


def test_an_enrolled_caller_is_asked_for_their_voice_first(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled()))
    assert (decision.action, decision.next_factor, decision.rule) == (Action.STEP_UP, VOICE, "start")


def test_a_matching_voice_must_repeat_random_digits_where_templates_are_on_file(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled(), tried((VOICE, PASS, 0.81))))
    assert (decision.action, decision.next_factor, decision.rule) == (Action.STEP_UP, Factor.LIVENESS, "voice-pass")
    live = decide(policy, DecisionContext(enrolled(), tried((VOICE, PASS, 0.81), (Factor.LIVENESS, PASS))))
    assert (live.action, live.rule) == (Action.ACCEPT, "liveness-pass")
    dead = decide(policy, DecisionContext(enrolled(), tried((VOICE, PASS, 0.81), (Factor.LIVENESS, FAIL))))
    assert (dead.action, dead.next_factor, dead.rule) == (Action.STEP_UP, OTP, "liveness-not-passed")


def test_a_matching_voice_without_digit_templates_is_confirmed_by_a_code_where_codes_are_configured(policy) -> None:
    """Issue 18: no silent skip. Before, a voice pass without templates was accepted although a code could be sent
    (a recording of the customer gets in)."""
    no_templates = enrolled(available=ALL - {Factor.LIVENESS})
    decision = decide(policy, DecisionContext(no_templates, tried((VOICE, PASS, 0.81))))
    assert (decision.action, decision.next_factor, decision.rule) == (Action.STEP_UP, OTP, "voice-pass-without-liveness")
    # Nothing stronger configured: the voice alone decides, under a rule that says so and --strict flags.
    voice_only = enrolled(available=frozenset({VOICE, KBA}))
    alone = decide(policy, DecisionContext(voice_only, tried((VOICE, PASS, 0.81))))
    assert (alone.action, alone.rule) == (Action.ACCEPT, "voice-pass-no-challenge")
    assert "a recording" in alone.reason


def test_a_grey_voice_confirmed_by_knowledge_must_still_repeat_the_digits(policy) -> None:
    """Issue 18: a recording played 8 % faster lands in the grey band; knowledge answers then accepted it with
    LIVENESS=SKIPPED although digit templates were on file."""
    after_kba = (GREY,) + tried((OTP, FactorOutcome.UNAVAILABLE), (KBA, PASS))
    decision = decide(policy, DecisionContext(enrolled(), after_kba))
    assert (decision.action, decision.next_factor, decision.rule) == (
        Action.STEP_UP, Factor.LIVENESS, "knowledge-then-liveness")
    live = decide(policy, DecisionContext(enrolled(), after_kba + tried((Factor.LIVENESS, PASS))))
    assert (live.action, live.rule) == (Action.ACCEPT, "liveness-confirms-grey-voice")
    dead = decide(policy, DecisionContext(enrolled(), after_kba + tried((Factor.LIVENESS, FAIL))))
    assert dead.action is not Action.ACCEPT


def test_strict_flags_every_rule_that_accepts_without_a_liveness_challenge(policy) -> None:
    flagged = {w.split("'")[1] for w in policy.warnings() if "liveness" in w}
    assert flagged == {"voice-pass-no-challenge", "knowledge-confirms-grey-voice"}
    quiet = load_policy(overrides={"rules": {
        "voice-pass-no-challenge": {"action": "route_to_agent"},
        "knowledge-confirms-grey-voice": {"when": {"passed": ["liveness"]}}}})
    assert [w for w in quiet.warnings() if "liveness" in w] == []


def test_what_the_voice_checks_found_comes_before_any_accept(policy) -> None:
    from ivr.policy.model import Risk

    replay = decide(policy, DecisionContext(enrolled(), (FactorAttempt(VOICE, PASS, 0.9, risks=(Risk.REPLAY,)),)))
    assert (replay.action, replay.rule, replay.result) == (Action.REJECT, "replayed", "FAIL")
    listed = decide(policy, DecisionContext(enrolled(), (FactorAttempt(VOICE, PASS, 0.9, risks=(Risk.WATCHLIST,)),)))
    assert (listed.action, listed.rule) == (Action.ROUTE_TO_AGENT, "watchlisted")


def test_an_inconclusive_voice_steps_up_to_a_code_and_only_a_grey_voice_to_questions(policy) -> None:
    short = decide(policy, DecisionContext(enrolled(), tried((VOICE, INCONCLUSIVE))))
    assert (short.action, short.next_factor, short.rule) == (Action.STEP_UP, OTP, "voice-not-decided")
    # A too-short answer and no code: knowledge answers may not stand in for the voice.
    no_code = decide(
        policy, DecisionContext(enrolled(), tried((VOICE, INCONCLUSIVE), (OTP, FactorOutcome.UNAVAILABLE)))
    )
    assert (no_code.action, no_code.rule) == (Action.ROUTE_TO_AGENT, "default")
    # A voice in the grey band, and no code: knowledge answers may confirm it.
    grey = decide(policy, DecisionContext(enrolled(), (GREY,) + tried((OTP, FactorOutcome.UNAVAILABLE))))
    assert (grey.action, grey.next_factor, grey.rule) == (Action.STEP_UP, KBA, "grey-voice-code-unavailable")
    # No digit templates on file (with them, knowledge-then-liveness asks for the digits first).
    confirmed = decide(policy, DecisionContext(
        enrolled(available=ALL - {Factor.LIVENESS}), (GREY,) + tried((OTP, FactorOutcome.UNAVAILABLE), (KBA, PASS))))
    assert (confirmed.action, confirmed.rule) == (Action.ACCEPT, "knowledge-confirms-grey-voice")
    passed = decide(policy, DecisionContext(enrolled(), tried((VOICE, INCONCLUSIVE), (OTP, PASS))))
    assert (passed.action, passed.rule) == (Action.ACCEPT, "code-pass")


def test_a_grey_voice_may_go_straight_to_questions_when_there_is_no_code(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled(available=frozenset({VOICE, KBA})), (GREY,)))
    assert (decision.action, decision.next_factor, decision.rule) == (Action.STEP_UP, KBA, "voice-grey")


def test_a_failed_voice_is_never_accepted_alone_but_may_be_confirmed_by_a_code(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled(), tried((VOICE, FAIL, 0.12))))
    assert (decision.action, decision.next_factor, decision.rule) == (Action.STEP_UP, OTP, "voice-fail")


def test_repeated_recent_failures_send_a_failed_voice_to_an_agent(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled(recent_failures=3), tried((VOICE, FAIL, 0.12))))
    assert (decision.action, decision.rule) == (Action.ROUTE_TO_AGENT, "voice-fail-repeated")


def test_a_locked_identity_is_rejected_as_locked_whatever_happened(policy) -> None:
    for factors in ((), tried((VOICE, PASS, 0.9)), tried((VOICE, FAIL), (OTP, PASS))):
        decision = decide(policy, DecisionContext(enrolled(locked=True), factors))
        assert (decision.action, decision.rule, decision.result) == (Action.REJECT, "locked", "LOCKED")


def test_every_claimed_account_is_asked_for_its_voice_first(policy) -> None:
    """Unknown, not enrolled and opted-out accounts sound the same as enrolled ones until a factor is tried."""
    for identity in (IdentityState(known=False, enrolled=False, available=frozenset({VOICE, OTP})),
                     IdentityState(enrolled=False, available=frozenset({VOICE, OTP, KBA})),
                     enrolled(opted_out=True)):
        decision = decide(policy, DecisionContext(identity))
        assert (decision.next_factor, decision.rule) == (VOICE, "start")
    no_voiceprint = decide(policy, DecisionContext(IdentityState(enrolled=False, available=ALL),
                                                   tried((VOICE, FactorOutcome.NOT_ENROLLED))))
    assert (no_voiceprint.next_factor, no_voiceprint.rule) == (OTP, "voice-not-decided")


def test_a_failed_voice_is_not_rescued_by_knowledge_answers(policy) -> None:
    decision = decide(
        policy, DecisionContext(enrolled(available=frozenset({VOICE, KBA})), tried((VOICE, FAIL)))
    )
    assert (decision.action, decision.rule) == (Action.ROUTE_TO_AGENT, "default")


def test_when_no_factor_is_left_the_caller_goes_to_an_agent(policy) -> None:
    decision = decide(policy, DecisionContext(enrolled(available=frozenset({VOICE})), tried((VOICE, FAIL))))
    assert (decision.action, decision.rule) == (Action.ROUTE_TO_AGENT, "default")
    two_failed = decide(policy, DecisionContext(enrolled(), tried((VOICE, FAIL), (OTP, FAIL))))
    assert (two_failed.action, two_failed.rule) == (Action.ROUTE_TO_AGENT, "default")


def test_a_factor_is_never_asked_twice_in_one_call(policy) -> None:
    context = DecisionContext(enrolled(), (GREY,) + tried((OTP, FactorOutcome.ERROR)))
    decision = decide(policy, context)
    assert decision.next_factor is KBA
    final = decide(
        policy, DecisionContext(enrolled(), context.factors + tried((KBA, FactorOutcome.UNAVAILABLE)))
    )
    assert final.action is Action.ROUTE_TO_AGENT


def _line(line: str, identity: IdentityState, factors: tuple[FactorAttempt, ...] = ()) -> DecisionContext:
    from ivr.policy.model import Line

    return DecisionContext(identity, factors, Line(line))


@pytest.mark.parametrize("line", ["enroll", "optout"])
def test_a_pin_alone_never_replaces_or_deletes_a_voiceprint_on_file(policy, line: str) -> None:
    on_file = enrolled(available=frozenset({VOICE, PIN}))
    start = decide(policy, _line(line, on_file))
    assert (start.action, start.next_factor) == (Action.STEP_UP, PIN)
    after_pin = decide(policy, _line(line, on_file, tried((PIN, PASS))))
    assert (after_pin.action, after_pin.next_factor, after_pin.rule) == (
        Action.STEP_UP, VOICE, "change-pin-needs-more")
    voice_too = decide(policy, _line(line, on_file, tried((PIN, PASS), (VOICE, PASS))))
    assert (voice_too.action, voice_too.rule) == (Action.ACCEPT, "change-voice-pass")
    voice_failed = decide(policy, _line(line, on_file, tried((PIN, PASS), (VOICE, FAIL))))
    assert voice_failed.action is Action.ROUTE_TO_AGENT  # no code configured: a person decides
    with_code = decide(policy, _line(line, enrolled(available=ALL), tried((PIN, PASS), (VOICE, FAIL))))
    assert (with_code.action, with_code.next_factor) == (Action.STEP_UP, OTP)


def test_a_first_enrolment_is_proved_by_a_code_or_else_the_pin(policy) -> None:
    new = IdentityState(enrolled=False, available=frozenset({OTP, PIN}))
    assert decide(policy, _line("enroll", new)).next_factor is OTP
    assert decide(policy, _line("enroll", new, tried((OTP, PASS)))).rule == "change-code-pass"
    no_code = decide(policy, _line("enroll", new, tried((OTP, FactorOutcome.UNAVAILABLE))))
    assert no_code.next_factor is PIN
    assert decide(policy, _line("enroll", new, tried((OTP, FactorOutcome.UNAVAILABLE), (PIN, PASS)))).rule == (
        "first-enrolment-pin")
    assert decide(policy, _line("enroll", new, tried((OTP, FAIL)))).action is Action.ROUTE_TO_AGENT


def test_the_shipped_policy_has_no_path_that_accepts_on_knowledge_answers_alone(policy) -> None:
    assert [w for w in policy.warnings() if "knowledge answers alone" in w] == []
    weak = load_policy(overrides={"rules": {"knowledge-confirms-grey-voice": {"when": {"voice_grey": None}}}})
    assert any("knowledge-confirms-grey-voice" in w for w in weak.warnings())
    # And whatever the factors, no decision of the shipped policy accepts with only knowledge passed.
    outcomes = list(FactorOutcome)
    for first in outcomes:
        for second in outcomes:
            for grey in (False, True):
                voice = FactorAttempt(VOICE, first, grey_band=grey and first is INCONCLUSIVE)
                factors = (voice, FactorAttempt(OTP, second), FactorAttempt(KBA, PASS))
                decision = decide(policy, DecisionContext(enrolled(), factors))
                if decision.action is Action.ACCEPT:
                    assert voice.grey_band or second is PASS or first is PASS, (first, second, decision.rule)


def test_with_voice_alone_not_enough_a_voice_pass_is_confirmed_by_another_factor() -> None:
    strict = load_policy(overrides={"voice_alone_accepts": False})
    decision = decide(strict, DecisionContext(enrolled(available=frozenset({VOICE, KBA})), tried((VOICE, PASS, 0.9))))
    assert (decision.action, decision.next_factor, decision.rule) == (
        Action.STEP_UP, KBA, "voice-pass-no-challenge")
    assert "voice alone is not enough" in decision.reason
    confirmed = decide(strict, DecisionContext(enrolled(), tried((VOICE, PASS, 0.9), (OTP, PASS))))
    assert confirmed.action is Action.ACCEPT
    nothing_else = decide(
        strict, DecisionContext(enrolled(available=frozenset({VOICE})), tried((VOICE, PASS, 0.9)))
    )
    assert nothing_else.action is Action.ROUTE_TO_AGENT


def test_score_bands_and_environment_style_overrides_patch_named_rules() -> None:
    policy = load_policy(
        overrides={"rules": {"voice-fail-repeated": {"when": {"recent_failures_at_least": 1}}}}
    )
    assert (
        decide(policy, DecisionContext(enrolled(recent_failures=1), tried((VOICE, FAIL)))).action
        is Action.ROUTE_TO_AGENT
    )
    banded = parse_policy(
        {
            "version": "t",
            "rules": [
                {
                    "name": "near-miss",
                    "when": {"factor": "voice", "outcome": "fail", "score_at_least": 0.4},
                    "action": "step_up",
                    "next": ["otp"],
                },
                {
                    "name": "far-off",
                    "when": {"factor": "voice", "outcome": "fail"},
                    "action": "reject",
                    "result": "FAIL",
                },
                {"name": "default", "action": "route_to_agent"},
            ],
        }
    )
    assert decide(banded, DecisionContext(enrolled(), tried((VOICE, FAIL, 0.45)))).rule == "near-miss"
    assert decide(banded, DecisionContext(enrolled(), tried((VOICE, FAIL, 0.10)))).rule == "far-off"
    assert (
        decide(banded, DecisionContext(enrolled(), tried((VOICE, FAIL)))).rule == "far-off"
    )  # no score: no band


# --- bad policies ------------------------------------------------------------
def _rules(*rules: dict) -> dict:
    return {"version": "t", "rules": list(rules)}


DEFAULT = {"name": "default", "action": "route_to_agent"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _rules({"name": "x", "when": {"factor": "retina"}, "action": "reject"}, DEFAULT),
            r"rule #1 'x', when\.factor",
        ),
        (_rules({"name": "x", "action": "step_up", "next": ["fax"]}, DEFAULT), r"rule #1 'x', next"),
        (
            _rules({"name": "x", "when": {"colour": "red"}, "action": "reject"}, DEFAULT),
            r"unknown field 'colour'",
        ),
        (_rules({"name": "x", "when": {"factor": "voice"}, "action": "reject"}), r"no default rule"),
        (
            _rules(DEFAULT, {"name": "late", "when": {"factor": "otp"}, "action": "reject"}),
            r"'late' can never fire: the earlier rule 'default'",
        ),
        (
            _rules(
                {"name": "broad", "when": {"factor": ["voice", "otp"]}, "action": "reject"},
                {
                    "name": "narrow",
                    "when": {"factor": "voice", "outcome": "fail"},
                    "action": "route_to_agent",
                },
                DEFAULT,
            ),
            r"'narrow' can never fire: the earlier rule 'broad'",
        ),
        (
            _rules(
                {"name": "x", "when": {"score_at_least": 0.8, "score_below": 0.5}, "action": "reject"},
                DEFAULT,
            ),
            r"'x' can never fire: score_at_least",
        ),
        (
            _rules({"name": "x", "when": {"factor": "voice"}, "action": "accept"}, DEFAULT),
            r"accept rule must require a passed factor",
        ),
        (
            _rules(
                {"name": "x", "when": {"factor": "voice", "outcome": ["pass", "fail"]}, "action": "accept"},
                DEFAULT,
            ),
            r"accept rule must require a passed factor",
        ),
        (_rules({"name": "x", "action": "step_up"}, DEFAULT), r"needs 'next'"),
        (
            _rules(
                {"name": "x", "when": {"factor": "voice"}, "action": "reject"},
                {"name": "x", "when": {"factor": "otp"}, "action": "reject"},
                DEFAULT,
            ),
            r"appears more than once",
        ),
        ({"rules": [DEFAULT]}, r"version"),
    ],
)
def test_a_bad_policy_is_refused_with_a_message_naming_the_problem(document: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(document, "test policy")


def test_a_step_up_rule_before_a_narrower_rule_does_not_make_it_unreachable() -> None:
    # step_up can fall through when no factor is left, so later rules stay reachable.
    policy = parse_policy(
        _rules(
            {"name": "try-otp", "when": {"factor": "voice"}, "action": "step_up", "next": "otp"},
            {
                "name": "voice-agent",
                "when": {"factor": "voice", "outcome": "fail"},
                "action": "route_to_agent",
            },
            DEFAULT,
        )
    )
    no_code = IdentityState(enrolled=True, available=frozenset({VOICE}))
    assert decide(policy, DecisionContext(no_code, tried((VOICE, FAIL)))).rule == "voice-agent"
    with_code = IdentityState(enrolled=True, available=frozenset({VOICE, OTP}))
    assert decide(policy, DecisionContext(with_code, tried((VOICE, FAIL)))).rule == "try-otp"


def test_bad_policy_files_name_the_file_and_the_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: '1'\nrules:\n  - name: a\n    action: [reject\n")
    with pytest.raises(PolicyError, match=r"broken\.yaml is not valid YAML at line \d+"):
        load_policy(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(scalar)
    with pytest.raises(PolicyError, match="names rule 'no-such-rule'"):
        load_policy(overrides={"rules": {"no-such-rule": {"action": "reject"}}})


def test_a_policy_file_from_the_settings_is_used(tmp_path: Path, monkeypatch) -> None:
    from ivr.policy import policy_from_settings
    from ivr.settings import Settings

    custom = tmp_path / "policy.yaml"
    custom.write_text("version: site-7\nrules:\n  - name: everyone-to-agent\n    action: route_to_agent\n")
    monkeypatch.setenv("VOICEAUTH_POLICY__FILE", str(custom))
    monkeypatch.setenv("VOICEAUTH_POLICY__OVERRIDES", '{"version": "site-7b"}')
    policy = policy_from_settings(Settings().policy)
    assert policy.version == "site-7b"
    assert decide(policy, DecisionContext(enrolled())).rule == "everyone-to-agent"
