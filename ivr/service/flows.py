"""The flows ``ivr serve`` offers, built from the settings: ``verify``, ``enroll`` and ``optout``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from ivr.flows.base import Flow, SecondFactor

if TYPE_CHECKING:
    from ivr.db.customers import CustomerDirectory
    from ivr.flows.fallback import FallbackKit
    from ivr.knowledge.service import KnowledgeService
    from ivr.settings import Settings
    from voiceprints.engine import VoiceprintEngine


@dataclass(frozen=True)
class AppServices:
    """The IVR's own database services, opened once per worker (customers, fallback factors, consent)."""

    customers: "CustomerDirectory"
    knowledge: "KnowledgeService"
    kit: "FallbackKit"


def app_services(settings: "Settings", engine: "VoiceprintEngine") -> AppServices:
    """Open the IVR tables (same database as the voiceprints unless configured otherwise) and build the kit.

    Secrets (caller-number HMAC key, OTP secret, knowledge pepper) come from
    the environment or the data directory's 0600 file, as for the CLI, so
    answers imported with `ivr customers import` match in calls.
    """
    from ivr.audit.log import AuditLog
    from ivr.consent.registry import ConsentRegistry
    from ivr.db.customers import CustomerDirectory
    from ivr.db.engine import open_database
    from ivr.flows.fallback import FallbackKit
    from ivr.flows.second_factors import KbaStep, OtpStep
    from ivr.knowledge.service import KnowledgeService
    from ivr.limits.service import Limits
    from ivr.otp.build import otp_backend
    from ivr.policy.loader import policy_from_settings
    from ivr.secrets import load_server_secrets

    config = settings.flows
    db = open_database(settings.core().database_url())
    secrets = load_server_secrets(settings.secrets, settings.data_dir)
    knowledge = KnowledgeService(db, pepper=secrets.knowledge_pepper)
    backend = otp_backend(settings.otp, db, secrets.otp_secret)
    kit = FallbackKit(
        db=db, policy=policy_from_settings(settings.policy), limits=Limits(db, settings.limits),
        audit=AuditLog(db),
        consent=ConsentRegistry(db, policy_version=settings.consent.policy_version, store=engine.store),
        customers=CustomerDirectory(db), secrets=secrets,
        otp=OtpStep(backend, config) if backend is not None else None,
        kba=KbaStep(knowledge, settings.kba.policy(), config) if settings.kba.enabled else None,
    )
    return AppServices(kit.customers, knowledge, kit)


def default_flows(
    engine: "VoiceprintEngine", settings: "Settings", second_factor: SecondFactor | None = None
) -> Mapping[str, Flow]:
    """verify (with policy step-up unless VOICEAUTH_FLOWS__STEP_UP=false), enroll and optout.

    The enrolment and opt-out lines prove the caller holds the account with a
    one-time code when codes are configured, else with the PIN.
    """
    from ivr.flows.enroll import EnrollFlow
    from ivr.flows.fallback import Authenticator
    from ivr.flows.optout import OptOutFlow
    from ivr.flows.pin import PinFactor
    from ivr.flows.second_factors import OtpFactor
    from ivr.flows.verify import VerifyFlow

    config = settings.flows
    app = app_services(settings, engine)
    kit = app.kit
    factor: SecondFactor = second_factor or (
        OtpFactor(app.customers, kit.otp) if kit.otp is not None else PinFactor(app.customers, app.knowledge, config))
    return {
        "verify": VerifyFlow(engine, config, Authenticator(kit) if config.step_up else None),
        "enroll": EnrollFlow(engine, config, factor, kit.consent),
        "optout": OptOutFlow(kit.consent, config, factor),
    }
