#!/bin/sh
# Install headless Chromium and its WebDriver (Debian's chromium + chromium-driver) for the browser tests.
# Idempotent and quiet: does nothing when both are present; prints apt's output only when it fails.
# Needs root (or sudo) and a reachable Debian mirror.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "install-browser: run as root (or with sudo) to install chromium and chromium-driver" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "install-browser: failed: $*" >&2
        exit 1
    fi
}
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
