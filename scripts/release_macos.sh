#!/usr/bin/env bash
# macOS release: build Fovea.app (and self-test it), sign it inside-out, notarize and staple the app,
# wrap it in a DMG, then sign, notarize and staple the DMG. The order and every command come from
# buildkit/signing.py (no --deep; entitlements, buildkit/entitlements.plist, only on the main
# executable and the app).
#
# Credentials (without them the DMG holds the ad-hoc signed app, which opens elsewhere only after a
# right-click > Open):
#   FOVEA_CODESIGN_IDENTITY="Developer ID Application: Your Name (TEAMID)"
#   FOVEA_NOTARY_PROFILE=<profile saved by `xcrun notarytool store-credentials`>, or
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD (stored into the keychain profile "fovea-release" first)
#
# Usage: scripts/release_macos.sh [--skip-build] [--dry-run]
#   --dry-run prints the exact signing/notarization/DMG command sequence and runs none of it
#   (works on any platform once dist/Fovea.app exists).
set -euo pipefail
cd "$(dirname "$0")/.."
skip_build=0; dry_run=()
for a in "$@"; do
  case $a in
    --skip-build) skip_build=1 ;;
    --dry-run) dry_run=(--dry-run); skip_build=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
if [[ ${#dry_run[@]} -eq 0 && "$(uname)" != "Darwin" ]]; then
  echo "release_macos.sh runs on macOS (codesign, notarytool, hdiutil); --dry-run works anywhere" >&2
  exit 1
fi
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
[[ $skip_build == 1 ]] || scripts/build_app.sh
app=dist/Fovea.app
[[ -d $app ]] || { echo "no $app; build it first (scripts/build_app.sh)" >&2; exit 1; }
version=$(python -c "import plistlib,sys; print(plistlib.load(open(sys.argv[1],'rb'))['CFBundleShortVersionString'])" "$app/Contents/Info.plist")
dmg=dist/Fovea-$version.dmg
identity=${FOVEA_CODESIGN_IDENTITY:-}

if [[ -n $identity || ${#dry_run[@]} -gt 0 ]]; then
  profile=${FOVEA_NOTARY_PROFILE:-}
  if [[ -z $profile && -n ${APPLE_ID:-} && ${#dry_run[@]} -eq 0 ]]; then
    profile=fovea-release
    xcrun notarytool store-credentials "$profile" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
      --password "$APPLE_APP_PASSWORD"
  fi
  [[ -n $profile || ${#dry_run[@]} -gt 0 ]] || { echo "signing needs notary credentials (see the header)" >&2; exit 1; }
  python -m buildkit.signing "$app" --identity "${identity:-Developer ID Application: (dry run)}" \
    --dmg "$dmg" --notary-profile "${profile:-PROFILE}" "${dry_run[@]}"
else
  echo "FOVEA_CODESIGN_IDENTITY not set: an ad-hoc signed app in an unsigned DMG (no notarization)" >&2
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  ditto "$app" "$stage/Fovea.app"
  ln -s /Applications "$stage/Applications"
  hdiutil create -volname "Fovea $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
fi
[[ ${#dry_run[@]} -gt 0 ]] || echo "release: $dmg ($(du -h "$dmg" | cut -f1))"
