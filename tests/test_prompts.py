"""The shipped prompt set: every prompt the flows play exists in both languages and is generated reproducibly."""

from __future__ import annotations

import ast
from pathlib import Path

import soundfile as sf

from ivr.prompts.build import build_prompts
from ivr.prompts.catalog import PROMPTS

FLOWS = Path(__file__).resolve().parents[1] / "ivr" / "flows"


def played_prompt_names() -> set[str]:
    """String literals passed to io.play(...) and the advice table in the flow sources."""
    names: set[str] = set()
    for path in FLOWS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "play":
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.add(arg.value)
                    elif isinstance(arg, ast.IfExp):
                        names.update(a.value for a in (arg.body, arg.orelse) if isinstance(a, ast.Constant))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("enroll-"):
                names.add(node.value)
    names.update(f"enroll-say-{i}" for i in (1, 2, 3))
    return {n for n in names if not n.endswith("-")}  # f-string stems such as "enroll-say-"


def test_every_prompt_the_flows_play_is_in_the_catalogue_in_spanish_and_english():
    missing = played_prompt_names() - set(PROMPTS)
    assert not missing, f"prompts played but not shipped: {sorted(missing)}"
    for name, texts in PROMPTS.items():
        assert set(texts) == {"en", "es"}, name


def test_prompts_are_generated_once_as_8khz_wav(tmp_path):
    made = build_prompts(tmp_path, languages=("es",))
    assert made == len(PROMPTS)
    info = sf.info(tmp_path / "es" / "enter-account.wav")
    assert info.samplerate == 8000 and info.channels == 1 and info.duration > 1.0
    assert build_prompts(tmp_path, languages=("es",)) == 0  # nothing changed, nothing regenerated
    (tmp_path / "es" / "enter-account.wav").unlink()
    assert build_prompts(tmp_path, languages=("es",)) == 1
