#!/usr/bin/env bash
# Set up .venv and run the offline quickstart: no GPU, no model downloads, a few minutes on a laptop CPU.
#   bash scripts/quickstart.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec "$VENV/bin/turnwise" quickstart "${1:-runs/quickstart}"
