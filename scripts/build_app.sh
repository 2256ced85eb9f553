#!/usr/bin/env bash
# Build the packaged app from build.spec: dist/Fovea.app on macOS, the one-folder dist/fovea/ on Linux.
# Then run the frozen binary once (--version, models list) and print the bundle's size.
#
# Usage: scripts/build_app.sh            (uses .venv when present; needs the dev extra: PyInstaller)
# Env:   FOVEA_CODESIGN_IDENTITY         sign while building (scripts/release_macos.sh signs afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
python -c "import PyInstaller" 2>/dev/null || { echo "PyInstaller is missing: pip install -e '.[dev]'" >&2; exit 1; }
[[ -f resources/icons/fovea.icns ]] || python scripts/make_icons.py
if [[ ! -d resources/models/fovea-demo-clip ]]; then
  echo "warning: resources/models/fovea-demo-clip is missing; the app will have no bundled demo model" >&2
fi

start=$(date +%s)
python -m PyInstaller --noconfirm --clean --log-level WARN build.spec
echo "built in $(( $(date +%s) - start )) s"

if [[ "$(uname)" == "Darwin" ]]; then
  bundle=dist/Fovea.app
  exe=$bundle/Contents/MacOS/fovea
else
  bundle=dist/fovea
  exe=$bundle/fovea
fi
# User data goes to a throwaway folder: the smoke test must not touch the real library.
smoke_data=$(mktemp -d)
trap 'rm -rf "$smoke_data"' EXIT
FOVEA_DATA_DIR=$smoke_data "$exe" --version
FOVEA_DATA_DIR=$smoke_data "$exe" models list >/dev/null
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1))"
