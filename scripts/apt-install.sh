#!/bin/sh
# apt-get install PACKAGES quietly as root (or through sudo): `sh scripts/apt-install.sh LABEL PACKAGE...`.
# Prints apt's output only when it fails, prefixed messages with LABEL. The install-*.sh scripts call it once
# they found what they need missing. Needs a reachable Debian mirror.
set -eu
label=$1
shift

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "$label: run as root (or with sudo) to install $*" >&2
    exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "$label: failed: $*" >&2
        exit 1
    fi
}
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
run $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
