"""``ivr policy``: check the decision policy, and see what it decides for a sequence of factor outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ivr.cli.context import ctx_of
from ivr.cli.fallback import JSON, fallback_errors
from ivr.cli.output import ExitCode, emit
from ivr.policy.model import (
    Action,
    DecisionContext,
    Factor,
    FactorAttempt,
    FactorOutcome,
    IdentityState,
    Line,
    PolicyDecision,
    Risk,
)
from ivr.policy.schema import Policy

policy_app = typer.Typer(help="The decision policy (which factor next, accept, reject, agent).",
                         no_args_is_help=True)
POLICY_FILE = typer.Option(None, "--policy", help="Policy file (default: the configured one, "
                                                  "VOICEAUTH_POLICY__FILE, with its overrides).")


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


def _policy(ctx: typer.Context, file: Optional[Path]) -> Policy:
    from ivr.policy.loader import load_policy, policy_from_settings

    return load_policy(file) if file is not None else policy_from_settings(ctx_of(ctx).settings.policy)


@policy_app.command("check")
@fallback_errors
def policy_check(
    ctx: typer.Context,
    file: Optional[Path] = typer.Argument(None, help="Policy file to check (default: the configured one)."),
    strict: bool = typer.Option(False, "--strict", help="Also refuse (exit 6) what weakens security, such as "
                                                        "accepting on knowledge answers alone."),
    as_json: bool = JSON,
) -> None:
    """Validate a policy file and list its rules in the order they are tried; exit 6 if it is unusable."""
    policy = _policy(ctx, file)
    warnings = policy.warnings()
    rules = [
        {"name": r.name, "action": r.action.value, "next": [f.value for f in r.next],
         "when": r.when.model_dump(mode="json", exclude_none=True)}
        for r in policy.rules
    ]
    emit(
        {"version": policy.version, "voice_alone_accepts": policy.voice_alone_accepts, "rules": rules,
         "warnings": warnings, "refused": strict and bool(warnings)},
        as_json,
        f"policy {policy.version}: {len(rules)} rules, voice alone "
        f"{'accepts' if policy.voice_alone_accepts else 'never accepts'}\n"
        + "\n".join(
            f"  {i + 1:>2}. {r['name']:<30} {r['action']}{' ' + '/'.join(r['next']) if r['next'] else ''}"
            for i, r in enumerate(rules)
        )
        + "".join(f"\nwarning: {w}" for w in warnings),
    )
    if strict and warnings:
        raise typer.Exit(int(ExitCode.BAD_INPUT))


def parse_step(text: str) -> FactorAttempt:
    """``voice:pass``, ``voice:fail@0.41``, ``voice:grey`` (inconclusive in the grey band), ``otp:unavailable``,
    ``voice:pass+replay`` (what the voice checks found: replay, synthetic, watchlist)."""
    head, *flags = text.split("+")
    head, _, score = head.partition("@")
    factor, sep, outcome = head.partition(":")
    try:
        grey = outcome == "grey"
        attempt = FactorAttempt(Factor(factor.strip().lower()),
                                FactorOutcome.INCONCLUSIVE if grey else FactorOutcome(outcome.strip().lower()),
                                score=float(score) if score else None, grey_band=grey,
                                risks=tuple(Risk(f.strip().lower()) for f in flags))
    except ValueError:
        raise ValueError(
            f"step {text!r} is not FACTOR:OUTCOME[@SCORE][+RISK] with FACTOR one of "
            f"{', '.join(f.value for f in Factor)}, OUTCOME one of {', '.join(o.value for o in FactorOutcome)} "
            f"or grey (voice), RISK one of {', '.join(r.value for r in Risk)}"
        ) from None
    if sep != ":" or (grey and attempt.factor is not Factor.VOICE):
        raise ValueError(f"step {text!r}: expected FACTOR:OUTCOME (grey only for voice)")
    return attempt


def _said(decision: PolicyDecision) -> str:
    what = decision.action.value + (f" {decision.next_factor.value}" if decision.next_factor else "")
    return f"{what} (rule {decision.rule}: {decision.reason})"


@policy_app.command("simulate")
@fallback_errors
def policy_simulate(
    ctx: typer.Context,
    steps: List[str] = typer.Argument(..., help="Factor outcomes in the order they happen, e.g. "
                                                "voice:inconclusive otp:unavailable kba:pass (voice:grey = a "
                                                "score in the grey band; voice:pass+replay = the voice checks "
                                                "found a replay; liveness:pass = the digit challenge)."),
    line: str = typer.Option("verify", "--line", help="verify, enroll or optout."),
    enrolled: bool = typer.Option(True, "--enrolled/--not-enrolled", help="A voiceprint is on file."),
    known: bool = typer.Option(True, "--known/--unknown", help="The account is a known customer."),
    opted_out: bool = typer.Option(False, "--opted-out", help="The caller opted out of voice authentication."),
    locked: bool = typer.Option(False, "--locked", help="The account is locked."),
    recent_failures: int = typer.Option(0, "--recent-failures", min=0, help="Failed tries in the lockout window."),
    available: Optional[str] = typer.Option(None, "--available", help="Factors this account can be asked for, "
                                                                      "comma-separated (default: all)."),
    file: Optional[Path] = POLICY_FILE,
    as_json: bool = JSON,
) -> None:
    """What the policy decides, step by step, for a sequence of factor outcomes; whether it accepts, by which rule."""
    from ivr.policy.engine import decide

    policy = _policy(ctx, file)
    try:
        where = Line(line)
    except ValueError:
        raise ValueError(f"--line {line!r}: use verify, enroll or optout") from None
    offered = (frozenset(Factor(f.strip()) for f in available.split(",") if f.strip()) if available is not None
               else frozenset(Factor))
    identity = IdentityState(known=known, enrolled=enrolled, opted_out=opted_out, locked=locked,
                             recent_failures=recent_failures, available=offered)
    unused = [parse_step(step) for step in steps]
    done: list[FactorAttempt] = []
    decision = decide(policy, DecisionContext(identity, (), where))
    trace: list[tuple[str, PolicyDecision]] = [("start", decision)]
    while decision.action is Action.STEP_UP and unused and unused[0].factor is decision.next_factor:
        step = unused.pop(0)
        done.append(step)
        decision = decide(policy, DecisionContext(identity, tuple(done), where))
        label = f"{step.factor.value}:{'grey' if step.grey_band else step.outcome.value}"
        trace.append((label + "".join(f"+{r.value}" for r in step.risks), decision))
    accepted = decision.action is Action.ACCEPT
    unasked = steps[len(done):]
    lines = [f"{after:<22} -> {_said(d)}" for after, d in trace]
    if unasked:
        why = (f"the policy asks for {decision.next_factor.value} next"
               if decision.action is Action.STEP_UP and decision.next_factor else "the policy had already decided")
        lines.append(f"not used: {' '.join(unasked)} ({why})")
    lines.append(f"{'ACCEPTED' if accepted else 'NOT ACCEPTED'}: {decision.action.value} by rule {decision.rule}"
                 + (f", result {decision.result}" if decision.result else ""))
    emit({"line": where.value, "accepted": accepted,
          "final": {"action": decision.action.value, "rule": decision.rule, "result": decision.result,
                    "next": _next(decision)},
          "steps": [{"after": after, "decision": d.action.value, "next": _next(d), "rule": d.rule, "reason": d.reason}
                    for after, d in trace],
          "not_used": unasked}, as_json, "\n".join(lines))


def _next(decision: PolicyDecision) -> str | None:
    return decision.next_factor.value if decision.next_factor else None
