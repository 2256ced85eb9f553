#!/usr/bin/env bash
# Installs Fovea and opens it on the bundled demo library and model; pass --no-gui for the headless run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/fovea demo "$@"
