#!/usr/bin/env bash
# Build the lab: a Debian sid chroot with a real Asterisk 22 (Debian 12 has no
# Asterisk package; sid has 22.x).  Reused as-is when a previous build finished
# (the marker is written last, so an interrupted build is detected and redone).
#
#   scripts/lab/build.sh [DIR]        default DIR: <repo>/.lab/chroot
#
# debootstrap's chatter goes to DIR/../build.log; on failure the tail is shown.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:-${VOICEAUTH_LAB_DIR:-$repo/.lab/chroot}}"
mirror="${VOICEAUTH_LAB_MIRROR:-http://deb.debian.org/debian}"
marker="$dir/.voiceauth-lab-complete"
log="$(dirname "$dir")/build.log"

if [[ -f "$marker" ]]; then
    echo "lab chroot already built: $dir"
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    echo "build.sh needs root (debootstrap and chroot)" >&2
    exit 2
fi
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is not installed: apt-get install debootstrap" >&2
    exit 2
fi

mkdir -p "$(dirname "$dir")"
# A half-built tree from an interrupted run cannot be resumed by debootstrap.
if [[ -e "$dir" ]]; then
    "$here/stop.sh" "$dir" >/dev/null 2>&1 || true
    rm -rf --one-file-system "$dir"
fi

echo "building the lab chroot in $dir (about 90 s; log: $log)"
start=$SECONDS
if ! debootstrap --variant=minbase --include=asterisk,asterisk-core-sounds-en \
        sid "$dir" "$mirror" >"$log" 2>&1; then
    echo "debootstrap failed (network or mirror unavailable?); last lines of $log:" >&2
    tail -n 15 "$log" >&2
    exit 1
fi

# Spanish prompts are optional: a failure here only costs the Spanish sounds.
cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
if chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        asterisk-core-sounds-es >>"$log" 2>&1; then
    echo "installed asterisk-core-sounds-es"
else
    echo "asterisk-core-sounds-es not installed (see $log); continuing with English only" >&2
fi
chroot "$dir" apt-get clean >>"$log" 2>&1 || true

# Keep DNS on the machine: the host's resolver could leak lookups outside.
echo "nameserver 127.0.0.1" >"$dir/etc/resolv.conf"
printf '127.0.0.1\tlocalhost voiceauth-lab\n::1\tlocalhost\n' >"$dir/etc/hosts"

chroot "$dir" /usr/sbin/asterisk -V >>"$log"
echo "$(chroot "$dir" /usr/sbin/asterisk -V) built $(date -u +%FT%TZ)" >"$marker"
echo "lab chroot ready in $((SECONDS - start)) s: $(cat "$marker")"
