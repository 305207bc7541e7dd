#!/usr/bin/env bash
# Stop the lab Asterisk (idempotent): ask it to stop, then TERM, then KILL by
# pid (never by name: other Asterisks on this machine are not ours; any process
# rooted in the chroot is ours), and unmount.
#
#   scripts/lab/stop.sh [DIR]
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ -d "$lab_dir" ]] || exit 0

if pid="$(lab_pid)"; then
    lab_rx "core stop now" >/dev/null 2>&1 || true
    for sig in 0 TERM KILL; do
        # Each stage gets up to 5 s before the next, harsher one.
        [[ $sig != 0 ]] && kill -"$sig" "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break 2
            sleep 0.1
        done
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "Asterisk pid $pid survived SIGKILL" >&2
        exit 1
    fi
    echo "lab Asterisk stopped (pid $pid)"
fi
# Whatever else still runs in the chroot is ours too: an Asterisk whose start was cut short
# before it wrote its pid file, a hung `asterisk -rx`. Same stages, by pid.
for sig in TERM KILL; do
    left="$(lab_processes)"
    [[ -z "$left" ]] && break
    echo "stopping what is left in the lab chroot ($sig): $(echo $left)" >&2
    kill -"$sig" $left 2>/dev/null
    for _ in $(seq 50); do
        [[ -z "$(lab_processes)" ]] && break
        sleep 0.1
    done
done
if [[ -n "$(lab_processes)" ]]; then
    echo "processes survived SIGKILL in $lab_dir: $(echo $(lab_processes))" >&2
    exit 1
fi
rm -f "$lab_pidfile" "$lab_dir/run/asterisk/asterisk.ctl"

for m in dev proc; do
    if lab_mounted "$m"; then
        umount "$lab_dir/$m" 2>/dev/null || umount -l "$lab_dir/$m"
    fi
done
exit 0
