# Shared by the lab scripts: where the chroot is and how to talk to it.
# Sourced, not run.
lab_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lab_repo="$(cd "$lab_here/../.." && pwd)"
lab_dir="${1:-${VOICEAUTH_LAB_DIR:-$lab_repo/.lab/chroot}}"
lab_marker="$lab_dir/.voiceauth-lab-complete"
lab_pidfile="$lab_dir/run/asterisk/asterisk.pid"

lab_rx() {
    # No pipes into grep -q here: under pipefail a SIGPIPE would read as failure.
    chroot "$lab_dir" /usr/sbin/asterisk -rx "$1"
}

lab_pid() {
    local pid
    [[ -f "$lab_pidfile" ]] || return 1
    pid="$(cat "$lab_pidfile" 2>/dev/null)"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid: it must be an asterisk rooted in our chroot.
    [[ "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$(readlink -f "$lab_dir")" ]] || return 1
    echo "$pid"
}

lab_mounted() { mountpoint -q "$lab_dir/$1"; }

lab_processes() {
    # Every process whose root is the chroot: all of them are the lab's (Asterisk, asterisk -rx).
    local root p
    root="$(readlink -f "$lab_dir")"
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$root" ]] && echo "${p#/proc/}"
    done
    return 0
}
