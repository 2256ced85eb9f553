"""The Mac build's decisions, checked on any platform: what build.spec collects from the mlx wheel, the
Info.plist, and the minimum-macOS parser that guards the plist's floor (fed with otool/vtool output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.info_plist import MIN_MACOS, info_plist
from buildkit.macho import MinOS, is_macho, macho_files, parse_min_os, parse_version, too_new
from buildkit.mlx_files import LIB_DIR, MissingMetallib, mlx_lib_files


def _fake_wheel(root: Path, names: list[str]) -> Path:
    """An installed `mlx` package folder as the mlx + mlx-metal wheels lay it out."""
    mlx = root / "mlx"
    (mlx / "include" / "mlx").mkdir(parents=True)
    (mlx / "include" / "mlx" / "array.h").write_text("// headers are not needed at run time")
    (mlx / "core.cpython-311-darwin.so").write_bytes(b"\xcf\xfa\xed\xfe")
    for n in names:
        (mlx / "lib" / n).parent.mkdir(parents=True, exist_ok=True)
        (mlx / "lib" / n).write_bytes(b"x")
    return mlx


def test_metal_wheel_lib_folder_is_collected_whole_with_the_metallib_beside_libmlx(tmp_path: Path) -> None:
    mlx = _fake_wheel(tmp_path, ["libmlx.dylib", "mlx.metallib", "extra/kernels.metallib"])
    got = mlx_lib_files(mlx, require_metallib=True)
    assert got.binaries == [(str(mlx / "lib" / "libmlx.dylib"), LIB_DIR)]
    # Data files, into the same folder as the dylib (sub-folders kept); headers and core.so are not in lib/.
    assert got.datas == [
        (str(mlx / "lib" / "extra" / "kernels.metallib"), f"{LIB_DIR}/extra"),
        (str(mlx / "lib" / "mlx.metallib"), LIB_DIR),
    ]


def test_a_metal_build_without_the_metallib_is_refused(tmp_path: Path) -> None:
    mlx = _fake_wheel(tmp_path, ["libmlx.dylib"])
    with pytest.raises(MissingMetallib, match=r"no mlx\.metallib \(found libmlx\.dylib\)"):
        mlx_lib_files(mlx, require_metallib=True)


def test_linux_cpu_wheel_needs_no_metallib(tmp_path: Path) -> None:
    mlx = _fake_wheel(tmp_path, ["libmlx.so", "libgfortran.so.5"])
    got = mlx_lib_files(mlx, require_metallib=False)
    assert [Path(s).name for s, _ in got.binaries] == ["libgfortran.so.5", "libmlx.so"] and got.datas == []


def test_the_installed_mlx_wheel_has_a_lib_folder_the_spec_can_collect() -> None:
    from buildkit.mlx_files import mlx_package_dir

    got = mlx_lib_files(mlx_package_dir(), require_metallib=False)
    assert any(Path(s).name.startswith("libmlx") for s, _ in got.binaries)


def test_info_plist_sets_the_macos_14_floor_and_the_keys_a_mac_app_needs() -> None:
    p = info_plist("1.2.3", year=2026)
    assert p["LSMinimumSystemVersion"] == MIN_MACOS == "14.0"
    assert p["NSPrincipalClass"] == "NSApplication"
    assert p["CFBundleShortVersionString"] == p["CFBundleVersion"] == "1.2.3"
    assert p["NSHumanReadableCopyright"].startswith("Copyright © 2026 ")
    for folder in ("Desktop", "Documents", "Downloads"):
        assert "photos" in p[f"NS{folder}FolderUsageDescription"]
    assert "external" in p["NSRemovableVolumesUsageDescription"]
    assert "network" in p["NSNetworkVolumesUsageDescription"]


# `otool -l` output in the layout Xcode's cctools print (LC_BUILD_VERSION: numeric platform).
OTOOL_ARM64 = """\
Fovea.app/Contents/Frameworks/mlx/lib/libmlx.dylib:
Load command 0
      cmd LC_SEGMENT_64
  cmdsize 1352
  segname __TEXT
Load command 9
      cmd LC_BUILD_VERSION
  cmdsize 32
 platform 1
    minos 14.0
      sdk 14.5
   ntools 1
     tool 3
  version 1053.12
Load command 10
      cmd LC_SOURCE_VERSION
  cmdsize 16
  version 0.0
"""
# `vtool -show-build` of a universal file: one block per slice, platform by name.
VTOOL_FAT = """\
libpng16.16.dylib (architecture x86_64):
Load command 10
      cmd LC_VERSION_MIN_MACOSX
  cmdsize 16
  version 10.9
      sdk 10.14
libpng16.16.dylib (architecture arm64):
Load command 10
      cmd LC_BUILD_VERSION
  cmdsize 32
 platform MACOS
    minos 15.0
      sdk 15.2
   ntools 1
     tool LD
  version 1115.7.3
"""
# A Catalyst slice's minos is not a macOS version and must not be read as one.
OTOOL_CATALYST = """\
x.dylib:
Load command 3
      cmd LC_BUILD_VERSION
  cmdsize 32
 platform 6
    minos 17.0
      sdk 17.0
   ntools 0
"""


def test_min_os_parser_reads_otool_and_vtool_output() -> None:
    assert parse_min_os(OTOOL_ARM64) == [MinOS("", (14,))]
    assert parse_min_os(VTOOL_FAT) == [MinOS("x86_64", (10, 9)), MinOS("arm64", (15,))]
    assert parse_min_os(OTOOL_CATALYST) == []  # LC_SOURCE_VERSION's "version" above is ignored too


def test_a_binary_above_the_plist_floor_fails_the_check_by_name() -> None:
    per_file = {"a/libmlx.dylib": parse_min_os(OTOOL_ARM64), "b/libpng16.16.dylib": parse_min_os(VTOOL_FAT)}
    assert too_new(per_file, MIN_MACOS) == ["b/libpng16.16.dylib (arm64): needs macOS 15 > 14.0"]
    assert too_new(per_file, "15.0") == []
    assert parse_version("14.0.0") == parse_version("14") < parse_version("14.6")


def test_mach_o_files_are_found_by_magic_not_by_name(tmp_path: Path) -> None:
    (tmp_path / "Frameworks").mkdir()
    (tmp_path / "Frameworks" / "thin").write_bytes(bytes.fromhex("cffaedfe") + b"\0" * 28)
    (tmp_path / "Frameworks" / "fat.so").write_bytes(bytes.fromhex("cafebabe") + b"\0" * 28)
    (tmp_path / "Frameworks" / "mlx.metallib").write_bytes(b"MTLB" + b"\0" * 28)
    (tmp_path / "Frameworks" / "link").symlink_to("thin")
    (tmp_path / "Info.plist").write_text("<plist/>")
    assert is_macho(tmp_path / "Frameworks" / "thin") and not is_macho(tmp_path / "Info.plist")
    assert sorted(p.name for p in macho_files(tmp_path)) == ["fat.so", "thin"]


# ---- signing order (buildkit/signing.py); the commands themselves run only on a Mac ----------------


def _fake_app(root: Path) -> Path:
    import plistlib

    app = root / "Fovea.app"
    macho = bytes.fromhex("cffaedfe") + b"\0" * 28
    files = [
        "Contents/MacOS/fovea",
        "Contents/Frameworks/mlx/lib/libmlx.dylib",
        "Contents/Frameworks/mlx/core.cpython-311-darwin.so",
        "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework/Versions/A/QtCore",
        "Contents/Frameworks/Python.framework/Versions/3.11/Python",
        "Contents/Resources/lib-dynload/_ssl.cpython-311-darwin.so",
    ]
    for f in files:
        (app / f).parent.mkdir(parents=True, exist_ok=True)
        (app / f).write_bytes(macho)
    (app / "Contents/Resources/mlx/lib").mkdir(parents=True)
    (app / "Contents/Resources/mlx/lib/mlx.metallib").write_bytes(b"MTLB")
    fw = app / "Contents/Frameworks/PySide6/Qt/lib/QtCore.framework"
    (fw / "QtCore").symlink_to("Versions/A/QtCore")
    info = {"CFBundleExecutable": "fovea", "CFBundleShortVersionString": "1.2.3"}
    (app / "Contents/Info.plist").write_bytes(plistlib.dumps(info))
    return app


def test_release_signs_inside_out_without_deep_and_entitles_only_the_app(tmp_path: Path) -> None:
    from buildkit.signing import ENTITLEMENTS, release_commands

    app = _fake_app(tmp_path)
    dmg = tmp_path / "Fovea-1.2.3.dmg"
    cmds = release_commands(
        app, identity="Developer ID Application: X (T)", dmg=dmg, notary=["--keychain-profile", "p"]
    )
    assert not any("--deep" in c for c in cmds)
    signs = [c[-1] for c in cmds if c[0] == "codesign" and "--sign" in c]
    rel = [str(Path(s).relative_to(tmp_path)) if s.startswith(str(tmp_path)) else s for s in signs]
    fw = "Fovea.app/Contents/Frameworks/PySide6/Qt/lib/QtCore.framework"
    assert set(rel[:-3]) == {
        f"{fw}/Versions/A/QtCore",
        fw,
        "Fovea.app/Contents/Frameworks/Python.framework/Versions/3.11/Python",
        "Fovea.app/Contents/Frameworks/Python.framework",
        "Fovea.app/Contents/Frameworks/mlx/lib/libmlx.dylib",
        "Fovea.app/Contents/Frameworks/mlx/core.cpython-311-darwin.so",
        "Fovea.app/Contents/Resources/lib-dynload/_ssl.cpython-311-darwin.so",
    }
    assert rel.index(f"{fw}/Versions/A/QtCore") < rel.index(fw)  # contents before their bundle
    assert rel[-3:] == ["Fovea.app/Contents/MacOS/fovea", "Fovea.app", "Fovea-1.2.3.dmg"]
    entitled = [c[-1] for c in cmds if "--entitlements" in c]
    assert entitled == [str(app / "Contents/MacOS/fovea"), str(app)]
    assert all(c[c.index("--entitlements") + 1] == str(ENTITLEMENTS) for c in cmds if "--entitlements" in c)
    assert all(
        {"--options", "runtime", "--timestamp"} <= set(c) for c in cmds if "--sign" in c and c[-1] != str(dmg)
    )

    def step(*prefix: str, target: Path) -> int:
        return next(i for i, c in enumerate(cmds) if c[: len(prefix)] == list(prefix) and str(target) in c)

    app_zip = dmg.with_suffix(".app.zip")
    order = [
        step("codesign", "--force", target=app),
        step("xcrun", "notarytool", "submit", target=app_zip),
        step("xcrun", "stapler", "staple", target=app),
        step("hdiutil", "create", target=dmg),
        step("codesign", "--force", "--timestamp", "--sign", target=dmg),
        step("xcrun", "notarytool", "submit", target=dmg),
        step("xcrun", "stapler", "staple", target=dmg),
    ]
    assert order == sorted(order), order  # notarized, stapled app goes into the DMG, then the DMG likewise


def test_dry_run_prints_the_sequence_and_runs_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    from buildkit import signing

    def refuse(*a, **k):
        raise AssertionError("a dry run must not run anything")

    monkeypatch.setattr(signing.subprocess, "run", refuse)
    app = _fake_app(tmp_path)
    dmg = tmp_path / "F.dmg"
    argv = [str(app), "--identity", "ID", "--dmg", str(dmg), "--notary-profile", "fovea", "--dry-run"]
    assert signing.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [" ".join(__import__("shlex").quote(a) for a in c) for c in signing.release_commands(
        app, identity="ID", dmg=dmg, notary=["--keychain-profile", "fovea"])]  # fmt: skip
    assert lines == expected and lines[0].startswith(
        "codesign --force --options runtime --timestamp --sign ID "
    )


def test_the_app_icon_has_every_macos_size_at_1x_and_2x() -> None:
    from PIL import Image

    from buildkit.icns import ENTRIES, icns_entries

    icns = Path(__file__).resolve().parents[1] / "resources" / "icons" / "fovea.icns"
    assert icns_entries(icns.read_bytes()) == {t: (px, px) for t, px in ENTRIES.items()}
    # Read back by an independent reader: 16, 32, 128, 256 and 512 pt, each at scale 1 and 2.
    sizes = set(Image.open(icns).info["sizes"])
    assert sizes == {(pt, pt, scale) for pt in (16, 32, 128, 256, 512) for scale in (1, 2)}


def test_macos_ci_runs_the_same_scripts_on_an_arm64_runner() -> None:
    import yaml

    root = Path(__file__).resolve().parents[1]
    wf = yaml.safe_load((root / ".github" / "workflows" / "macos.yml").read_text(encoding="utf-8"))
    job = wf["jobs"]["app"]
    assert job["runs-on"] == "macos-14"  # Apple silicon, the app's minimum macOS
    runs = [s["run"].split()[:2] for s in job["steps"] if "run" in s]
    assert ["bash", "scripts/test.sh"] in runs and ["scripts/build_app.sh"] in [r[:1] for r in runs]
    assert ["scripts/release_macos.sh", "--dry-run"] in runs
    assert all((root / r[1 if r[0] == "bash" else 0]).is_file() for r in runs if "scripts/" in " ".join(r))
