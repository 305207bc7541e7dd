"""Prompt language per call: what the call asked for when it is offered, else the deployment's default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ivr.flows.config import FlowConfig
from ivr.prompts.languages import call_language
from ivr.settings import Settings


@pytest.mark.parametrize("requested, expected", [
    ("es", "es"), ("ES", "es"), ("es_MX", "es"), ("es-CO", "es"), ("en", "en"),
    ("pt", "en"), ("", "en"), (None, "en"), ("../../etc", "en"),
])
def test_a_call_gets_its_language_when_offered_else_the_default(requested, expected):
    assert call_language(requested, ("en", "es"), "en") == expected


def test_languages_and_the_default_come_from_the_settings(monkeypatch):
    monkeypatch.setenv("VOICEAUTH_FLOWS__LANGUAGES", '["es", "pt"]')
    monkeypatch.setenv("VOICEAUTH_FLOWS__DEFAULT_LANGUAGE", "es")
    flows = Settings().flows
    assert flows.call_language("pt_BR") == "pt" and flows.call_language("en") == "es"


def test_a_default_language_that_is_not_offered_is_refused_at_start():
    with pytest.raises(ValidationError, match="default_language 'fr' is not among languages"):
        FlowConfig(default_language="fr")


async def test_fastagi_calls_take_the_language_through_the_deployments_choice():
    from ivr.transports.asterisk.fastagi import AgiCallSession, AgiSession

    config = FlowConfig(languages=("en", "es"), default_language="es")

    def session(headers: dict[str, str]) -> AgiCallSession:
        agi = AgiSession(headers, None, None, peer="test")  # type: ignore[arg-type]
        return AgiCallSession(agi, language=config.call_language)

    assert session({"agi_language": "en", "agi_network_script": "verify"}).info.language == "en"
    assert session({"agi_arg_1": "lang=pt", "agi_network_script": "verify"}).info.language == "es"
    assert session({"agi_network_script": "verify"}).info.language == "es"
