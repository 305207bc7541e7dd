"""The three lines wired as the worker wires them, on a test's own database: one builder for every flow test."""

from __future__ import annotations

from dataclasses import dataclass, replace
from voiceprints.clock import Clock, system_clock

from ivr.audit.log import AuditLog
from ivr.consent.registry import ConsentRegistry
from ivr.db.customers import CustomerDirectory
from ivr.db.engine import Database, open_database
from ivr.flows.config import FlowConfig
from ivr.flows.digit_guide import DigitGuides
from ivr.flows.enroll import EnrollFlow
from ivr.flows.guard import Guard, Safeguards
from ivr.flows.liveness import LivenessStep
from ivr.flows.optout import OptOutFlow
from ivr.flows.pin import PinStep
from ivr.flows.second_factors import KbaStep, OtpStep
from ivr.flows.steps import FactorSteps
from ivr.flows.verify import VerifyFlow
from ivr.flows.voice import VoiceStep
from ivr.knowledge.policy import KnowledgePolicy
from ivr.knowledge.service import KnowledgeService
from ivr.limits.config import LimitsConfig
from ivr.limits.service import Limits
from ivr.notices import CustomerNotifier
from ivr.otp.backends import OtpBackend
from ivr.policy.loader import load_policy
from ivr.policy.schema import Policy
from ivr.secrets import SecretsConfig, ServerSecrets, load_server_secrets
from voiceprints.defences import AttackDefences
from voiceprints.engine import VoiceprintEngine

# The policy before issue 18 for accounts without digit templates: their voice pass accepted alone even
# where a code could be sent (the shipped policy confirms it with a code). For tests about a transport,
# whose callers enrol without digits: the liveness step-up finds no templates and the next rule,
# voice-pass-no-challenge, accepts.
VOICE_ALONE_WITHOUT_TEMPLATES = {"rules": {"voice-pass-without-liveness": {"next": ["liveness"]}}}

# Short keypad and listening deadlines keep silent-caller tests fast.
FAST = FlowConfig(first_digit_timeout_s=1.0, next_digit_timeout_s=0.5, verify_listen_deadline_s=2.0,
                  utterance_listen_deadline_s=2.0, digits_listen_deadline_s=2.0, liveness_deadline_s=3.0)


@dataclass
class Lines:
    """Everything a flow test scripts calls against and checks afterwards."""

    engine: VoiceprintEngine
    db: Database
    secrets: ServerSecrets
    guard: Guard
    steps: FactorSteps
    customers: CustomerDirectory
    knowledge: KnowledgeService
    limits: Limits
    audit: AuditLog
    defences: AttackDefences
    config: FlowConfig

    def verify(self) -> VerifyFlow:
        return VerifyFlow(self.engine, self.config, self.guard, self.steps)

    def voice_only(self) -> VerifyFlow:
        return VerifyFlow(self.engine, self.config, self.guard, replace(self.steps, otp=None, kba=None))

    def enroll(self, guides: DigitGuides | None = None) -> EnrollFlow:
        return EnrollFlow(self.engine, self.config, self.guard, self.steps, self.defences, guides)

    def optout(self) -> OptOutFlow:
        return OptOutFlow(self.engine, self.config, self.guard, self.steps)


def build_lines(
    engine: VoiceprintEngine,
    *,
    otp: OtpBackend | None = None,
    notifier_senders: dict | None = None,
    policy: Policy | None = None,
    limits: LimitsConfig | None = None,
    clock: Clock = system_clock,
    config: FlowConfig = FAST,
) -> Lines:
    db = open_database(engine.config.database_url(), clock=clock)
    secrets = load_server_secrets(SecretsConfig(), engine.config.data_dir)
    knowledge = KnowledgeService(db, pepper=secrets.knowledge_pepper)
    audit = AuditLog(db, key=secrets.audit_key)
    customers = CustomerDirectory(db)
    limiter = Limits(db, limits or LimitsConfig())
    kit = Safeguards(
        db=db, policy=policy or load_policy(), limits=limiter, audit=audit, secrets=secrets, customers=customers,
        consent=ConsentRegistry(db, policy_version="test-1", store=engine.store),
        notifier=CustomerNotifier(notifier_senders, audit) if notifier_senders else None)
    defences = AttackDefences(engine)
    steps = FactorSteps(
        voice=VoiceStep(engine, config, defences),
        otp=OtpStep(otp, config) if otp is not None else None,
        kba=KbaStep(knowledge, KnowledgePolicy(ask=2, required=2), config),
        pin=PinStep(knowledge, config),
        liveness=LivenessStep(defences, config))
    return Lines(engine, db, secrets, Guard(kit), steps, customers, knowledge, limiter, audit, defences, config)
