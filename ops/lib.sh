# shellcheck shell=bash
# ops/lib.sh — small helpers shared by ops/setup, ops/broker and ops/test.
#
# Source it from a script that lives in ops/:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It defines BIS_ROOT (the repository root, absolute, derived from this file's
# own location so the scripts work from any working directory) and a few
# functions. It sets no shell options of its own.

# Repository root: the parent of the folder holding this file.
BIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export BIS_ROOT

# Name of the calling script, for message prefixes ("setup", "broker", ...).
BIS_PROG="$(basename "$0")"

# say MESSAGE...: one short progress line on stderr (stdout stays clean for
# values that callers capture, such as `ops/broker url`).
say() { printf '[%s] %s\n' "$BIS_PROG" "$*" >&2; }

# die MESSAGE...: print an error and exit 1.
die() { printf '[%s] error: %s\n' "$BIS_PROG" "$*" >&2; exit 1; }

# as_root CMD...: run a command as root — directly when we are root, else
# through sudo (non-interactive when there is no terminal to ask on).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then sudo "$@"; else sudo -n "$@"; fi
    else
        die "need root for: $* (not root and no sudo)"
    fi
}

# now_s: seconds since the epoch with a fraction (for timings).
now_s() { date +%s.%N; }

# elapsed START: seconds since START (from now_s), one decimal.
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# tcp_open HOST PORT: true when something accepts TCP connections there.
# Uses bash's /dev/tcp, so it needs no extra tool; bounded to 2 s.
tcp_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# ensure_swift_on_path: the toolchain lives in /opt/swift on our machines; a
# non-login shell (CI, sudo) may not have it on PATH.
ensure_swift_on_path() {
    if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
        PATH="/opt/swift/usr/bin:$PATH"
        export PATH
    fi
}
