"""The release's signing, notarization and DMG steps as one ordered list of commands.

Apple's order (TN2206, "Signing a Mac Product For Distribution"): sign inside-out, every nested
Mach-O and bundle before what contains it, each with the hardened runtime and a secure timestamp and
*no* entitlements; then the main executable and the app with the app's entitlements. `--deep` is never
used (it would put the entitlements on every dylib and re-sign in an order it picks). The app is
notarized and stapled before it goes into the DMG, so a copy dragged out of the DMG still carries its
ticket offline; then the DMG is signed, notarized and stapled too.

`python -m buildkit.signing APP --identity ID [--notary-profile P] [--dry-run]` prints (dry run) or
runs the sequence; scripts/release_macos.sh calls it.
"""

from __future__ import annotations

import argparse
import plistlib
import shlex
import subprocess
import sys
from pathlib import Path

from .macho import macho_files

ENTITLEMENTS = Path(__file__).with_name("entitlements.plist")
_NESTED_BUNDLES = (".framework", ".app", ".bundle", ".appex", ".xpc")


def _nested_bundle(path: Path, app: Path) -> Path | None:
    """The innermost bundle folder (Foo.framework, ...) below `app` holding `path`, if any."""
    for parent in path.parents:
        if parent == app:
            return None
        if parent.suffix in _NESTED_BUNDLES:
            return parent
    return None


def signing_targets(app: Path, main_executable: Path) -> list[Path]:
    """Everything to sign before the main executable, innermost first.

    Loose Mach-O files are signed one by one; a nested bundle (a Qt .framework) is signed as a bundle,
    after the Mach-O files inside it. Deeper paths come first so that nothing is signed before its contents.
    """
    loose, bundles = set(), set()
    for f in macho_files(app / "Contents"):
        if f == main_executable:
            continue
        loose.add(f)
        if (b := _nested_bundle(f, app)) is not None:
            bundles.add(b)
    return sorted(loose | bundles, key=lambda p: (-len(p.relative_to(app).parts), str(p)))


def release_commands(
    app: Path,
    *,
    identity: str,
    dmg: Path,
    notary: list[str],
    entitlements: Path = ENTITLEMENTS,
) -> list[list[str]]:
    """Every command of a signed, notarized release, in order (see the module docstring)."""
    info = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
    main_exe = app / "Contents" / "MacOS" / info["CFBundleExecutable"]
    sign = ["codesign", "--force", "--options", "runtime", "--timestamp", "--sign", identity]
    cmds = [[*sign, str(p)] for p in signing_targets(app, main_exe)]
    cmds += [
        [*sign, "--entitlements", str(entitlements), str(main_exe)],
        [*sign, "--entitlements", str(entitlements), str(app)],
        ["codesign", "--verify", "--strict", "--verbose=2", str(app)],
    ]
    app_zip = dmg.with_suffix(".app.zip")  # notarytool takes a zip, dmg or pkg, not a folder
    stage = dmg.with_suffix(".stage")
    cmds += [
        ["ditto", "-c", "-k", "--keepParent", str(app), str(app_zip)],
        ["xcrun", "notarytool", "submit", str(app_zip), *notary, "--wait"],
        ["xcrun", "stapler", "staple", str(app)],
        ["xcrun", "stapler", "validate", str(app)],
        ["rm", "-rf", str(stage), str(app_zip)],
        ["mkdir", "-p", str(stage)],
        ["ditto", str(app), str(stage / app.name)],
        ["ln", "-s", "/Applications", str(stage / "Applications")],
        ["hdiutil", "create", "-volname", f"Fovea {info['CFBundleShortVersionString']}", "-srcfolder",
         str(stage), "-fs", "HFS+", "-format", "UDZO", "-ov", str(dmg)],
        ["rm", "-rf", str(stage)],
        ["codesign", "--force", "--timestamp", "--sign", identity, str(dmg)],
        ["xcrun", "notarytool", "submit", str(dmg), *notary, "--wait"],
        ["xcrun", "stapler", "staple", str(dmg)],
        ["xcrun", "stapler", "validate", str(dmg)],
        ["spctl", "--assess", "--type", "open", "--context", "context:primary-signature", "-vv", str(dmg)],
        ["spctl", "--assess", "--type", "execute", "-vv", str(app)],
    ]  # fmt: skip
    return cmds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m buildkit.signing", description=__doc__.splitlines()[0])
    ap.add_argument("app", type=Path)
    ap.add_argument("--identity", required=True, help='"Developer ID Application: Name (TEAMID)"')
    ap.add_argument("--dmg", type=Path, required=True)
    ap.add_argument("--notary-profile", required=True, help="a `xcrun notarytool store-credentials` profile")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args(argv)
    # Only a keychain profile: a password on these command lines would be printed by --dry-run.
    notary = ["--keychain-profile", args.notary_profile]
    cmds = release_commands(args.app, identity=args.identity, dmg=args.dmg, notary=notary)
    for c in cmds:
        print(shlex.join(c), flush=True)
        if not args.dry_run:
            subprocess.run(c, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
