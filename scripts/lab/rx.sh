#!/usr/bin/env bash
# Run one Asterisk CLI command in the lab: scripts/lab/rx.sh 'core show version'
# (VOICEAUTH_LAB_DIR selects a chroot other than .lab/chroot.)
set -euo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 'CLI COMMAND'" >&2
    exit 2
fi
cmd="$1"
set --
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
exec chroot "$lab_dir" /usr/sbin/asterisk -rx "$cmd"
