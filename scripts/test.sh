#!/usr/bin/env bash
# Installs everything (see install.sh) and runs the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest -q "$@"
