#!/bin/sh
# Install headless Chromium and its WebDriver (Debian's chromium + chromium-driver) for the browser tests.
# Idempotent and quiet: does nothing when both are present; prints apt's output only when it fails.
# Needs root (or sudo) and a reachable Debian mirror.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
sh "$(dirname "$0")/apt-install.sh" install-browser chromium chromium-driver
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
