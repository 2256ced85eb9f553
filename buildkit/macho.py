"""The minimum macOS of every Mach-O in the app, read from `otool -l` / `vtool -show-build` output.

pip installs the newest wheel the *build* Mac supports, so a dylib built for macOS 15 can slip into an
app whose Info.plist promises 14.0; it then fails to load on 14 ("language version 4.0 not supported"
for mlx.metallib's Metal library is the same trap). `python -m buildkit.macho APP --floor 14.0` fails
the build when any binary asks for more than the floor.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Mach-O thin (32/64-bit, either byte order) and universal ("fat") magics.
_MAGICS = {bytes.fromhex(h) for h in ("feedface", "cefaedfe", "feedfacf", "cffaedfe", "cafebabe", "bebafeca")}
_ARCH = re.compile(r"^\S.*\(architecture (\S+)\):\s*$")
_CMD = re.compile(r"^\s*cmd (LC_\w+)\s*$")
_FIELD = re.compile(r"^\s*(platform|minos|version)\s+(\S+)\s*$")
_MACOS_PLATFORMS = {"MACOS", "1"}  # vtool prints the name, otool the number


@dataclass(frozen=True)
class MinOS:
    """One architecture slice's minimum macOS, e.g. MinOS("arm64", (14, 0))."""

    arch: str
    version: tuple[int, ...]


def parse_version(text: str) -> tuple[int, ...]:
    """ "14.0" -> (14, 0); trailing zeros dropped so that 14 == 14.0 == 14.0.0."""
    parts = [int(p) for p in text.strip().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def parse_min_os(text: str) -> list[MinOS]:
    """The macOS minimums in one file's `otool -l` or `vtool -show-build` output (one per arch slice).

    Reads LC_BUILD_VERSION (platform MACOS / 1, field `minos`) and the older LC_VERSION_MIN_MACOSX
    (field `version`); other platforms' commands (iOS, Catalyst) are ignored.
    """
    out: list[MinOS] = []
    arch, cmd, platform = "", None, None
    for line in text.splitlines():
        if m := _ARCH.match(line):
            arch, cmd = m.group(1), None
        elif m := _CMD.match(line):
            cmd, platform = m.group(1), None
        elif (m := _FIELD.match(line)) and cmd is not None:
            key, value = m.groups()
            if cmd == "LC_BUILD_VERSION" and key == "platform":
                platform = value
            elif cmd == "LC_BUILD_VERSION" and key == "minos" and platform in _MACOS_PLATFORMS:
                out.append(MinOS(arch, parse_version(value)))
            elif cmd == "LC_VERSION_MIN_MACOSX" and key == "version":
                out.append(MinOS(arch, parse_version(value)))
    return out


def too_new(per_file: dict[str, list[MinOS]], floor: str) -> list[str]:
    """One line per binary whose minimum macOS is above `floor`, naming the file, arch and version."""
    limit = parse_version(floor)
    return [
        f"{path} ({m.arch or 'thin'}): needs macOS {'.'.join(map(str, m.version))} > {floor}"
        for path, found in sorted(per_file.items())
        for m in found
        if m.version > limit
    ]


def is_macho(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in _MAGICS
    except OSError:
        return False


def macho_files(root: Path) -> Iterator[Path]:
    """Every Mach-O file under `root` (symlinks skipped: their targets are visited themselves)."""
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            if not p.is_symlink() and is_macho(p):
                yield p


def read_min_os(path: Path) -> list[MinOS]:
    """`otool -l` on one file (Xcode command-line tools)."""
    r = subprocess.run(["otool", "-l", str(path)], capture_output=True, text=True, check=True)
    return parse_min_os(r.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m buildkit.macho", description=__doc__.splitlines()[0])
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--floor", required=True, help="LSMinimumSystemVersion, e.g. 14.0")
    args = ap.parse_args(argv)
    per_file = {str(p.relative_to(args.bundle)): read_min_os(p) for p in macho_files(args.bundle)}
    bad = too_new(per_file, args.floor)
    unknown = sorted(p for p, found in per_file.items() if not found)
    print(f"{len(per_file)} Mach-O files, {len(unknown)} without a macOS version command, floor {args.floor}")
    for line in bad:
        print(f"too new: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
