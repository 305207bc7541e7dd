"""sipp calls from the fixed scenarios in tests/lab/scenarios (the lab's transport tests)."""

from __future__ import annotations

from pathlib import Path

from scripts.lab.asterisk import Lab, SippResult, run_sipp

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


async def sipp_call(
    lab: Lab,
    scenario: str,
    *,
    exten: str,
    audio: Path,
    digits: str,
    workdir: Path,
    speech_ms: int = 3000,
    wait_ms: int = 20000,
    hold_ms: int = 1000,
    timeout: float = 45,
) -> SippResult:
    """Place one call with sipp (as an asyncio subprocess, so servers in this loop keep serving)."""
    text = (SCENARIOS / scenario).read_text()
    for key, value in {
        "@AUDIO@": audio.name,  # sipp resolves it relative to its working directory
        "@DIGITS@": digits,
        "@SPEECH_MS@": str(speech_ms),
        "@WAIT_MS@": str(wait_ms),
        "@HOLD_MS@": str(hold_ms),
    }.items():
        text = text.replace(key, value)
    scenario_file = workdir / f"{exten}-{scenario}"
    scenario_file.write_text(text)
    if audio.parent != workdir:
        (workdir / audio.name).write_bytes(audio.read_bytes())
    return await run_sipp(lab, scenario_file, exten, workdir=workdir, sip_port=5070, media_port=6000,
                          timeout=timeout)
