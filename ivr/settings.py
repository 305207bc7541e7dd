"""The one typed settings object of the engine, read from environment variables.

Every setting has a safe default; an admin overrides it with an environment
variable named ``VOICEAUTH_<GROUP>__<FIELD>`` (for example
``VOICEAUTH_STORE__URL=postgresql+psycopg://ivr@db/ivr`` or
``VOICEAUTH_MODEL__ECAPA_DIR=/opt/models/ecapa``), or
``VOICEAUTH_DATA_DIR`` for the top-level data directory.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ivr.flows.config import FlowConfig
from ivr.prompts.config import PromptSettings
from ivr.service.config import HttpSettings, ServiceSettings
from ivr.transports.asterisk.config import AmiSettings, AudioSocketSettings, FastAgiSettings
from ivr.transports.sip.config import SipSettings
from ivr.transports.twilio.config import TwilioSettings
from ivr.consent.config import ConsentConfig, RetentionConfig
from ivr.limits.config import LimitsConfig
from ivr.policy.config import PolicySettings
from ivr.knowledge.policy import KbaSettings
from ivr.otp.settings import OtpSettings
from ivr.secrets import SecretsConfig
from voiceprints.config import (
    CoreConfig,
    EnrolmentConfig,
    LivenessConfig,
    ModelConfig,
    QualityConfig,
    ReplayConfig,
    SpoofConfig,
    StoreConfig,
    VerificationConfig,
    WatchlistConfig,
    default_data_dir,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEAUTH_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    log_level: str = "INFO"
    quality: QualityConfig = QualityConfig()
    enrolment: EnrolmentConfig = EnrolmentConfig()
    verification: VerificationConfig = VerificationConfig()
    model: ModelConfig = ModelConfig()
    store: StoreConfig = StoreConfig()
    # Defences against replayed, synthetic and known-fraudster voices (issue 8).
    liveness: LivenessConfig = LivenessConfig()
    replay: ReplayConfig = ReplayConfig()
    spoof: SpoofConfig = SpoofConfig()
    watchlist: WatchlistConfig = WatchlistConfig()
    flows: FlowConfig = FlowConfig()
    # Telephony worker (`ivr serve`); see ivr/service/config.py and docs/admins.md.
    http: HttpSettings = HttpSettings()
    prompts: PromptSettings = PromptSettings()
    service: ServiceSettings = ServiceSettings()
    # Transports (ivr/transports/*/config.py): Asterisk (docs/admins.md), Twilio (docs/twilio.md),
    # SIP endpoint (docs/sip.md).
    ami: AmiSettings = AmiSettings()
    audiosocket: AudioSocketSettings = AudioSocketSettings()
    fastagi: FastAgiSettings = FastAgiSettings()
    twilio: TwilioSettings = TwilioSettings()
    sip: SipSettings = SipSettings()
    # Fallback factors: decision policy, attempt limits, consent, retention, server secrets.
    policy: PolicySettings = PolicySettings()
    limits: LimitsConfig = LimitsConfig()
    consent: ConsentConfig = ConsentConfig()
    retention: RetentionConfig = RetentionConfig()
    secrets: SecretsConfig = SecretsConfig()
    otp: OtpSettings = OtpSettings()
    kba: KbaSettings = KbaSettings()

    def core(self) -> CoreConfig:
        """The biometric core's view of the settings (it knows nothing of telephony)."""
        return CoreConfig(
            data_dir=self.data_dir,
            quality=self.quality,
            enrolment=self.enrolment,
            verification=self.verification,
            model=self.model,
            store=self.store,
            liveness=self.liveness,
            replay=self.replay,
            spoof=self.spoof,
            watchlist=self.watchlist,
        )
