"""The sample AMI user as shipped (dialplans/manager_voiceauth.sample.conf): enough for the worker, nothing more.

The lab loads the sample's user section verbatim as ``voiceauth-sample``
(scripts/lab/start.sh). The worker logs in with it and serves a real
AudioSocket call (it must find the channel, read the dialplan's inputs and
set the result); anything beyond that, above all ``Originate`` (with
``write=originate`` a login can run System() through the dialplan), is
refused by Asterisk itself.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import pytest_asyncio

from ivr.call import CallSession, FlowResult, Result
from ivr.settings import Settings
from ivr.transports.asterisk.ami import AmiAuthError, AmiClient, AmiError
from scripts.lab.asterisk import Lab
from scripts.lab.callers import DialplanResults, place_call

pytestmark = [pytest.mark.lab, pytest.mark.asyncio(loop_scope="module")]

SAMPLE = Path(__file__).resolve().parents[2] / "dialplans" / "manager_voiceauth.sample.conf"
SAMPLE_USER = "voiceauth-sample"


def sample_secret() -> str:
    section = SAMPLE.read_text().split("[voiceauth]", 1)[1]
    match = re.search(r"^secret=(\S+)", section, re.M)
    assert match, "the sample user has a secret"
    return match.group(1)


def sample_client(asterisk: Lab) -> AmiClient:
    return AmiClient("127.0.0.1", asterisk.ami_port, username=SAMPLE_USER, secret=sample_secret())


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def sample_user_loaded(asterisk: Lab) -> None:
    """A lab started before start.sh installed the sample user is restarted once (start.sh installs every config)."""
    try:
        async with sample_client(asterisk) as ami:
            await ami.wait_connected(10)
        return
    except AmiAuthError:
        pass
    await asyncio.to_thread(asterisk.stop)
    await asyncio.to_thread(asterisk.start)


async def test_the_sample_grants_neither_originate_nor_system_nor_command():
    section = SAMPLE.read_text().split("[voiceauth]", 1)[1]
    grants = {key: set(value.split(",")) for key, value in re.findall(r"^(read|write)=(\S+)", section, re.M)}
    assert grants == {"read": {"call", "dialplan"}, "write": {"call"}}


@pytest.mark.parametrize("action, fields", [
    ("Originate", {"Channel": "Local/100@voiceauth-lab", "Application": "Hangup", "Async": "true"}),
    ("Command", {"Command": "core show version"}),
    ("GetConfig", {"Filename": "manager.conf"}),
    ("UpdateConfig", {"SrcFilename": "extensions.conf", "DstFilename": "extensions.conf", "Reload": "yes"}),
])
async def test_asterisk_refuses_the_sample_user_anything_the_worker_does_not_use(asterisk: Lab, action, fields):
    async with sample_client(asterisk) as ami:
        await ami.wait_connected(10)
        with pytest.raises(AmiError, match="Permission denied"):
            await ami.action(action, fields)


async def test_the_worker_serves_an_audiosocket_call_logged_in_as_the_sample_user(asterisk: Lab, tmp_path: Path):
    seen: dict[str, object] = {}

    async def flow(call: CallSession) -> FlowResult:
        seen["info"] = call.info  # found through VarSet/Status, read with Getvar
        return FlowResult(Result.PASS, call.info.params.get("account"), 0.9, "sample AMI user")  # set with Setvar

    settings = Settings(
        data_dir=tmp_path / "data",
        ami={"port": asterisk.ami_port, "username": SAMPLE_USER, "secret": sample_secret()},
        audiosocket={"port": asterisk.audiosocket_port}, fastagi={"port": asterisk.agi_port},
        http={"port": 0}, service={"warm_up": False, "shutdown_grace_s": 2},
    )
    async with asterisk.ami_client() as lab_ami:  # the lab's own user reads the dialplan's report
        await lab_ami.wait_connected(10)
        results = DialplanResults(lab_ami)
        from ivr.service.worker import VoiceAuthService
        from tests.test_service_worker import BandEnergyEmbedder
        from voiceprints.engine import VoiceprintEngine
        from voiceprints.store.sql import open_store

        engine = VoiceprintEngine(BandEnergyEmbedder(), open_store(settings.core()), settings.core())
        service = VoiceAuthService(settings, engine=engine, flows={"verify": flow}, build_prompts=False)
        await service.start()
        try:
            await service.transport("asterisk").ami.wait_connected(15)
            call = await place_call(asterisk, "74711", [], caller="sample-ami", workdir=tmp_path)
            report = await results.of("sample-ami", timeout=15)
        finally:
            await service.stop(grace_s=2)
            engine.close()
            results.close()
    assert call.returncode == 0, call.stdout + call.stderr
    info = seen["info"]
    assert info.params["mode"] == "verify" and info.params["account"] == "4711"
    assert info.trunk and info.trunk.startswith("PJSIP/")
    assert report["Result"] == "PASS" and report["Account"] == "4711", report


async def test_the_admins_check_for_keypad_digits_over_audiosocket_passes_on_the_lab_asterisk(asterisk: Lab):
    """docs/admins.md: `core show application AudioSocket | grep DTMF` tells a PBX that passes digits."""
    async with asterisk.ami_client() as ami:
        await ami.wait_connected(10)
        described = await ami.command("core show application AudioSocket")
        modules = await ami.command("module show like uuid")
    assert "DTMF" in described, described
    assert "func_uuid" in modules, modules
