#!/usr/bin/env bash
# Is the lab Asterisk running? Prints its pid and exits 0 if so, exits 1 if not.
#
#   scripts/lab/status.sh [DIR]
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[[ -d "$lab_dir" ]] || exit 1
lab_pid
