"""docs/deploy.md stays true to the code: its settings exist, its alerts use real metrics, its unit waits long enough."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

from ivr.call import Result
from ivr.service.config import ServiceSettings
from ivr.service.metrics import ServiceMetrics
from ivr.settings import Settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "deploy.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def alert_rules() -> list[dict]:
    [rules] = [yaml.safe_load(b) for b in blocks("yaml") if b.lstrip().startswith("groups:")]
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_every_setting_named_in_the_deployment_guide_exists():
    names = set(re.findall(r"\bVOICEAUTH_([A-Z_]+?)__([A-Z_]+)\b", DOC.read_text()))
    assert len(names) > 15
    fields = Settings.model_fields
    for group, field in sorted(names):
        group_model = fields.get(group.lower())
        assert group_model is not None, f"VOICEAUTH_{group}__… is not a settings group"
        assert field.lower() in group_model.annotation.model_fields, f"VOICEAUTH_{group}__{field} is not a setting"


def test_alert_rules_use_the_metrics_and_results_the_worker_exports():
    exported = {metric.name for metric in ServiceMetrics().registry.collect()}
    rules = alert_rules()
    assert {"VoiceauthErrorRate", "VoiceauthDecisionLatency", "VoiceauthBusyRejections",
            "VoiceauthLockoutSpike"} <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket") and rule["annotations"]["summary"]
        for name in re.findall(r"\b(voiceauth_[a-z_]+)", rule["expr"]):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in exported, f"{rule['alert']}: {name} is not exported by ServiceMetrics"
        for result in re.findall(r'result="([A-Z_]+)"', rule["expr"]):
            assert result in Result.__members__, f"{rule['alert']}: no call ends with result {result}"
        for risk in re.findall(r'risk="([a-z_]+)"', rule["expr"]):
            assert risk in ("replay", "synthetic", "watchlist"), f"{rule['alert']}: no risk {risk}"
        for kind in re.findall(r'kind="([a-z_]+)"', rule["expr"]):
            assert kind in _kinds_in_code(), f"{rule['alert']}: no error kind {kind}"


def _kinds_in_code() -> set[str]:
    root = Path(__file__).resolve().parents[1] / "ivr"
    text = "".join(p.read_text() for p in [*root.glob("service/*.py"), *root.glob("transports/**/*.py")])
    return set(re.findall(r'(?:errors\.labels|count_from)\(\s*f?"([a-z_]+)', text))


def test_the_systemd_unit_runs_the_worker_and_waits_out_its_grace_period():
    [unit] = [b for b in blocks("ini") if "[Service]" in b]
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(unit)
    service = parser["Service"]
    assert service["ExecStart"].endswith("ivr serve")
    assert float(service["TimeoutStopSec"]) > ServiceSettings().shutdown_grace_s
    assert service["KillSignal"] == "SIGTERM"


def test_the_twilio_only_worker_of_docs_twilio_md_runs_twilio_and_nothing_of_asterisk(monkeypatch, tmp_path):
    """The documented environment file, as an admin would copy it: valid, and Twilio is the only transport."""
    from ivr.service.metrics import ServiceMetrics
    from ivr.transports import build_transports
    from ivr.transports.base import TransportEnv

    text = (DOC.parent / "twilio.md").read_text()
    section = text.split("## A Twilio-only worker", 1)[1]
    [env_file] = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[:1]
    for line in env_file.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, "token-from-the-console" if value == "..." else value)
    monkeypatch.setenv("VOICEAUTH_DATA_DIR", str(tmp_path))
    settings = Settings()
    env = TransportEnv(settings=settings, prompts=None, prompt_directories=(), metrics=ServiceMetrics())
    assert [t.name for t in build_transports(env)] == ["twilio"]
