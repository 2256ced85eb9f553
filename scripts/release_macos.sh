#!/usr/bin/env bash
# macOS release: build Fovea.app, sign it, wrap it in a DMG, notarize and staple. Runs on macOS only.
#
# Steps (each one is skipped, with a message, when its credentials are not in the environment):
#   1. scripts/build_app.sh                        -> dist/Fovea.app (PyInstaller ad-hoc signs it)
#   2. codesign with a Developer ID, hardened runtime, secure timestamp
#        FOVEA_CODESIGN_IDENTITY="Developer ID Application: Your Name (TEAMID)"
#   3. hdiutil: dist/Fovea-<version>.dmg holding Fovea.app and an /Applications link (always runs)
#   4. notarytool submit --wait, then stapler staple; credentials, either
#        FOVEA_NOTARY_PROFILE=<profile saved by `xcrun notarytool store-credentials`>
#      or
#        APPLE_ID=you@example.com APPLE_TEAM_ID=TEAMID APPLE_APP_PASSWORD=<app-specific password>
#
# Without a signing identity the DMG holds the ad-hoc signed app: it runs on the machine that built it,
# and elsewhere only after the user right-clicks Open (Gatekeeper). Notarization needs step 2.
# Usage: scripts/release_macos.sh [--skip-build]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "$(uname)" == "Darwin" ]] || { echo "release_macos.sh runs on macOS (hdiutil, codesign, notarytool)" >&2; exit 1; }

if [[ "${1:-}" != "--skip-build" ]]; then
  scripts/build_app.sh
fi
app=dist/Fovea.app
[[ -d $app ]] || { echo "no $app; build it first" >&2; exit 1; }
version=$(/usr/libexec/PlistBuddy -c "Print :CFBundleShortVersionString" "$app/Contents/Info.plist")
dmg=dist/Fovea-$version.dmg
identity=${FOVEA_CODESIGN_IDENTITY:-}

# 2. Sign. Python extension modules and the MLX/Qt libraries are signed inside-out by --deep;
#    the entitlement lets ctypes/libffi closures run under the hardened runtime.
if [[ -n $identity ]]; then
  entitlements=$(mktemp -t fovea-entitlements).plist
  cat >"$entitlements" <<'PLIST'
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>com.apple.security.cs.allow-unsigned-executable-memory</key><true/>
</dict>
</plist>
PLIST
  codesign --force --deep --timestamp --options runtime --entitlements "$entitlements" --sign "$identity" "$app"
  codesign --verify --deep --strict --verbose=2 "$app"
else
  echo "FOVEA_CODESIGN_IDENTITY not set: leaving the app ad-hoc signed (no notarization possible)" >&2
fi

# 3. The disk image: drag Fovea onto Applications.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$dmg"
hdiutil create -volname "Fovea $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$dmg"
if [[ -n $identity ]]; then
  codesign --force --timestamp --sign "$identity" "$dmg"
fi

# 4. Notarize and staple.
notary=()
if [[ -n ${FOVEA_NOTARY_PROFILE:-} ]]; then
  notary=(--keychain-profile "$FOVEA_NOTARY_PROFILE")
elif [[ -n ${APPLE_ID:-} && -n ${APPLE_TEAM_ID:-} && -n ${APPLE_APP_PASSWORD:-} ]]; then
  notary=(--apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" --password "$APPLE_APP_PASSWORD")
fi
if [[ -n $identity && ${#notary[@]} -gt 0 ]]; then
  xcrun notarytool submit "$dmg" "${notary[@]}" --wait
  xcrun stapler staple "$dmg"
  xcrun stapler validate "$dmg"
  spctl --assess --type open --context context:primary-signature -vv "$dmg"
else
  echo "notarization skipped (needs FOVEA_CODESIGN_IDENTITY and notary credentials)" >&2
fi
echo "release: $dmg ($(du -h "$dmg" | cut -f1))"
