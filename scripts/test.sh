#!/usr/bin/env bash
# Set up .venv and run the test suite: unit and integration tiers (slow tests need --runslow).
#   bash scripts/test.sh            # everything CI runs
#   bash scripts/test.sh -m "not integration"   # unit tests only, seconds
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if [ -n "${CI:-}" ]; then bash scripts/system-deps.sh; fi  # CI only: chromium for the HTML report test
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure, not a pass" >&2
fi
exit "$rc"
