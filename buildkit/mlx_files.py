"""The files of the mlx wheel's `mlx/lib` folder, for PyInstaller.

MLX loads `mlx.metallib` from the folder of the loaded `libmlx.dylib` (`load_colocated_library` in
mlx/backend/metal/device.cpp) when the first GPU stream is made. PyInstaller collects libmlx as a
dependency of `mlx/core*.so` but has no hook for the metallib, so a bundle without this function could
import mlx and then fail on the first `mx.load`. Everything under `mlx/lib` goes to `mlx/lib` in the
bundle, so the metallib always sits beside libmlx.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

LIB_DIR = "mlx/lib"
METALLIB = "mlx.metallib"
_BINARY_SUFFIXES = (".dylib", ".so")


class MissingMetallib(RuntimeError):
    """A macOS build whose mlx wheel has no mlx.metallib: the app would fail on its first model."""


@dataclass(frozen=True)
class MlxLibFiles:
    """PyInstaller `(source, dest_dir)` pairs: shared libraries as binaries, the rest (metallib) as data."""

    binaries: list[tuple[str, str]]
    datas: list[tuple[str, str]]


def mlx_package_dir() -> Path:
    """The installed `mlx` package folder, found without importing mlx."""
    spec = importlib.util.find_spec("mlx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mlx is not installed in the build environment")
    return Path(next(iter(spec.submodule_search_locations)))


def _is_shared_library(p: Path) -> bool:
    return p.suffix in _BINARY_SUFFIXES or ".so." in p.name


def mlx_lib_files(mlx_dir: Path, *, require_metallib: bool) -> MlxLibFiles:
    """Every file under `mlx_dir/lib`, keeping sub-folders; raise when a Metal build lacks its metallib."""
    lib = Path(mlx_dir) / "lib"
    files = sorted(p for p in lib.rglob("*") if p.is_file()) if lib.is_dir() else []
    if require_metallib and not any(p.name == METALLIB for p in files):
        found = ", ".join(p.name for p in files) or "nothing"
        raise MissingMetallib(f"{lib}: no {METALLIB} (found {found}); install the mlx-metal wheel")
    binaries, datas = [], []
    for p in files:
        dest = str(Path(LIB_DIR) / p.parent.relative_to(lib))
        (binaries if _is_shared_library(p) else datas).append((str(p), dest))
    return MlxLibFiles(binaries, datas)
