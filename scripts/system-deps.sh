#!/usr/bin/env bash
# Install the system packages some tests need, where that can be done without asking: Debian's `chromium`
# (the HTML report's screenshot test, tests/integration/test_eval_html.py). CI runs this before the tests
# (scripts/test.sh does when CI is set); on your own machine run it yourself, or the test is skipped.
#
#   bash scripts/system-deps.sh      # as root, on Debian or Ubuntu: apt-get installs what is missing
#
# It never uses sudo and never fails the build: it prints what it did, or why it did nothing.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  echo "system-deps: chromium already installed ($(command -v chromium || command -v chromium-browser))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: chromium missing; not root, so nothing installed (the screenshot test will be skipped)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: chromium missing; no apt-get here, so nothing installed (the screenshot test will be skipped)"
  exit 0
fi
echo "system-deps: installing chromium with apt-get (for the HTML report's screenshot test)"
if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
   && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
  echo "system-deps: installed chromium ($(command -v chromium))"
else
  echo "system-deps: apt-get could not install chromium (the screenshot test will be skipped)"
fi
exit 0
