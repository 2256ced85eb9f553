#!/usr/bin/env bash
# Build the packaged app from build.spec (dist/Fovea.app on macOS, the one-folder dist/fovea/ on Linux),
# check it, and run the frozen self-test (tests/test_frozen_build.py) against it:
#   - macOS: first installs the MLX wheels pinned in constraints-macos-build.txt, tagged for the
#     LSMinimumSystemVersion floor (buildkit/info_plist.py), so a newer build Mac cannot slip in
#     binaries that older macOS refuses; after the build, `python -m buildkit.macho` fails the build
#     if any Mach-O in the app needs more than the floor.
#   - everywhere: the frozen binary, in a bare environment, embeds with the demo model, indexes and
#     searches a folder with HEIC photos, captions with a tiny LLaVA (same tokens as the source tree)
#     and reports the MLX device; on macOS that must be the GPU.
#
# Usage: scripts/build_app.sh [--no-selftest]   (uses .venv when present; needs the dev extra)
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

floor=$(python -c "from buildkit.info_plist import MIN_MACOS; print(MIN_MACOS)")
if [[ "$(uname)" == "Darwin" ]]; then
  # Wheels made for the floor (pip would pick the newest the build Mac supports), exact versions.
  wheels=$(mktemp -d)
  tag="macosx_${floor/./_}_arm64"
  pyver=$(python -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  python -m pip download -q --only-binary=:all: --no-deps --platform "$tag" --python-version "$pyver" \
    -d "$wheels" -r constraints-macos-build.txt
  python -m pip install -q --no-deps --force-reinstall "$wheels"/*.whl
  rm -rf "$wheels"
  python -c "import mlx.core as mx; print('mlx', mx.__version__, 'for', '$tag')"
fi

start=$(date +%s)
python -m PyInstaller --noconfirm --clean --log-level WARN build.spec
echo "built in $(( $(date +%s) - start )) s"

if [[ "$(uname)" == "Darwin" ]]; then
  bundle=dist/Fovea.app
  exe=$bundle/Contents/MacOS/fovea
  python -m buildkit.macho "$bundle" --floor "$floor"
else
  bundle=dist/fovea
  exe=$bundle/fovea
fi
# User data goes to a throwaway folder: the smoke test must not touch the real library.
smoke_data=$(mktemp -d)
trap 'rm -rf "$smoke_data"' EXIT
FOVEA_DATA_DIR=$smoke_data "$exe" --version
echo "bundle: $bundle ($(du -sh "$bundle" | cut -f1))"

if [[ "${1:-}" != "--no-selftest" ]]; then
  # The same test CI runs, pointed at this build instead of building its own.
  gpu=0; [[ "$(uname)" == "Darwin" ]] && gpu=1
  FOVEA_FROZEN_DIST=dist FOVEA_REQUIRE_GPU=$gpu QT_QPA_PLATFORM=offscreen \
    python -m pytest -q -s -p no:cacheprovider tests/test_frozen_build.py
fi
