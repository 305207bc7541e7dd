"""Timing and retry settings of the call flows; every number says why it is what it is."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ivr.prompts.languages import call_language


class FlowConfig(BaseModel):
    # Verify: let the decision policy step up to a one-time code or knowledge
    # questions when the voice is not enough (off: voice only, as a pure
    # biometric check for deployments that do their own fallback).
    step_up: bool = True
    # Prompt languages offered (each needs the whole prompt set: the shipped
    # ones are en and es; add yours with recordings), and the one a call gets
    # when it asks for none or for one that is not offered.
    default_language: str = "en"
    languages: tuple[str, ...] = ("en", "es")
    # How the verify flow learns the claimed identity when the dialplan did not pass one.
    claim: Literal["dtmf", "callerid"] = "dtmf"
    account_max_digits: int = Field(16, ge=1, le=32)
    # Keypad timing as in most IVRs: 8 s to start typing, 4 s between digits.
    first_digit_timeout_s: float = Field(8.0, gt=0)
    next_digit_timeout_s: float = Field(4.0, gt=0)
    input_attempts: int = Field(3, ge=1)
    # Verify: stop listening as soon as this much net speech is in (the engine's
    # minimum plus a small margin for VAD edge differences), or at the deadline.
    speech_margin_s: float = Field(0.3, ge=0)
    verify_listen_deadline_s: float = Field(15.0, gt=0)
    # Enrolment: an utterance ends after this much silence following speech,
    # or at the maximum length (a caller reading a sentence takes 4-8 s).
    end_of_utterance_silence_s: float = Field(0.8, gt=0)
    utterance_max_s: float = Field(12.0, gt=0)
    utterance_listen_deadline_s: float = Field(15.0, gt=0)
    # Re-prompts per utterance after a quality problem, and extra utterances
    # allowed when the first ones do not add up to enough speech.
    utterance_retries: int = Field(2, ge=0)
    max_utterances: int = Field(6, ge=1)
    # Liveness challenge: 4-6 digits take 2-4 s to say, a slow speaker pausing
    # after each up to ~8 s; more is not an answer.
    liveness_answer_max_s: float = Field(12.0, gt=0)
    liveness_deadline_s: float = Field(15.0, gt=0)
    # Enrolment digits ("zero ... nine" with pauses): 8-12 s each; a silent
    # caller is asked again after the deadline.
    digits_max_s: float = Field(20.0, gt=0)
    digits_listen_deadline_s: float = Field(25.0, gt=0)

    @model_validator(mode="after")
    def _default_is_offered(self) -> "FlowConfig":
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not among languages "
                             f"{list(self.languages)} (VOICEAUTH_FLOWS__LANGUAGES)")
        return self

    def call_language(self, requested: str | None) -> str:
        """The prompt language of a call that asked for ``requested`` (see :mod:`ivr.prompts.languages`)."""
        return call_language(requested, self.languages, self.default_language)
