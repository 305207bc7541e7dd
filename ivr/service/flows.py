"""The flows ``ivr serve`` offers, built from the settings: ``verify``, ``enroll`` and ``optout``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from ivr.flows.base import Flow

if TYPE_CHECKING:
    from ivr.flows.guard import Guard
    from voiceprints.defences import AttackDefences
    from ivr.flows.steps import FactorSteps
    from ivr.prompts.sources import PromptSource
    from ivr.settings import Settings
    from voiceprints.engine import VoiceprintEngine

log = logging.getLogger("ivr.service")


@dataclass(frozen=True)
class AppServices:
    """What every line shares, opened once per worker: the guard (limits, audit, policy) and the factors."""

    guard: "Guard"
    steps: "FactorSteps"
    defences: "AttackDefences"


def app_services(settings: "Settings", engine: "VoiceprintEngine") -> AppServices:
    """Open the IVR tables (same database as the voiceprints unless configured otherwise) and build the guard.

    Secrets (caller-number HMAC key, OTP secret, knowledge pepper, audit key)
    come from the environment or the data directory's 0600 file, as for the
    CLI, so answers imported with `ivr customers import` match in calls; on a
    shared (PostgreSQL) database only from explicit settings.
    """
    from ivr.audit.log import AuditLog
    from ivr.consent.registry import ConsentRegistry
    from ivr.db.customers import CustomerDirectory
    from ivr.db.engine import open_database
    from ivr.flows.guard import Guard, Safeguards
    from ivr.flows.liveness import LivenessStep
    from ivr.flows.pin import PinStep
    from ivr.flows.second_factors import KbaStep, OtpStep
    from ivr.flows.steps import FactorSteps
    from ivr.flows.voice import VoiceStep
    from ivr.knowledge.service import KnowledgeService
    from ivr.limits.service import Limits
    from ivr.notices import CustomerNotifier
    from ivr.otp.build import build_senders, otp_backend
    from ivr.policy.loader import policy_from_settings
    from ivr.secrets import load_server_secrets
    from ivr.sharing import shared_store_of
    from voiceprints.defences import AttackDefences

    config = settings.flows
    db = open_database(settings.core().database_url())
    # On a database other hosts share, secrets are never generated here (ivr/sharing.py).
    secrets = load_server_secrets(settings.secrets, settings.data_dir, shared_store=shared_store_of(settings))
    policy = policy_from_settings(settings.policy)
    for warning in policy.warnings():
        log.warning("decision policy %s: %s", policy.version, warning)
    knowledge = KnowledgeService(db, pepper=secrets.knowledge_pepper)
    audit = AuditLog(db, key=secrets.audit_key)
    senders = build_senders(settings.otp)
    backend = otp_backend(settings.otp, db, secrets.otp_secret)
    kit = Safeguards(
        db=db, policy=policy, limits=Limits(db, settings.limits), audit=audit, secrets=secrets,
        customers=CustomerDirectory(db),
        consent=ConsentRegistry(db, policy_version=settings.consent.policy_version, store=engine.store),
        notifier=CustomerNotifier(senders, audit) if senders else None,  # type: ignore[arg-type]
    )
    defences = AttackDefences(engine)
    steps = FactorSteps(
        voice=VoiceStep(engine, config, defences),
        otp=OtpStep(backend, config, settings.otp.code.max_attempts) if backend is not None else None,
        kba=KbaStep(knowledge, settings.kba.policy(), config) if settings.kba.enabled else None,
        pin=PinStep(knowledge, config),
        liveness=LivenessStep(defences, config),
    )
    return AppServices(Guard(kit), steps, defences)


def default_flows(engine: "VoiceprintEngine", settings: "Settings",
                  prompts: "PromptSource | None" = None) -> Mapping[str, Flow]:
    """verify (with policy step-up unless VOICEAUTH_FLOWS__STEP_UP=false), enroll and optout.

    ``prompts``: what the calls hear; its digit prompts guide the enrolment line's digits.
    """
    from dataclasses import replace

    from ivr.flows.digit_guide import DigitGuides
    from ivr.flows.enroll import EnrollFlow
    from ivr.flows.optout import OptOutFlow
    from ivr.flows.verify import VerifyFlow

    config = settings.flows
    app = app_services(settings, engine)
    # Step-up off: the verify line asks for the voice only (the deployment does its own fallback);
    # codes and the PIN still prove the account on the enrolment and opt-out lines.
    verify_steps = app.steps if config.step_up else replace(app.steps, otp=None, kba=None)
    return {
        "verify": VerifyFlow(engine, config, app.guard, verify_steps),
        "enroll": EnrollFlow(engine, config, app.guard, app.steps, app.defences,
                             DigitGuides(prompts) if prompts is not None else None),
        "optout": OptOutFlow(engine, config, app.guard, app.steps),
    }
