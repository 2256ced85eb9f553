"""Converting a Hugging Face checkpoint into an installed MLX model: one entry point and one verify default
for `fovea models convert|pull` and the window's Preferences.

Core does not import `converters/` (torch, transformers: optional, absent from the packaged app). The
program's entry point registers a loader for them (`register_converters`), so the layering holds and a
build without them says so in one line.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, Literal

from app.core.contracts import JobKind, JobProgress
from app.core.errors import FoveaError
from app.core.faults import MB, DiskFullError, is_disk_full, need_for

Kind = Literal["embedder", "captioner"]
# (src, dst, *, dtype, quantize, allow_pickle, verify) -> a result whose `.report` (or None) has `.summary`
ConvertFn = Callable[..., Any]
_loader: Callable[[Kind], ConvertFn] | None = None


class ConvertError(FoveaError):
    """A checkpoint that cannot be converted (or verified) here, with a one-line reason."""


def register_converters(loader: Callable[[Kind], ConvertFn]) -> None:
    """Called once by the entry point: `loader(kind)` imports and returns the converter for a model kind."""
    global _loader
    _loader = loader


def reference_available() -> bool:
    """Reference verification needs torch and transformers, which the packaged app leaves out."""
    if getattr(sys, "frozen", False):
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def convert_model(
    src: Path,
    dst: Path,
    *,
    kind: Kind = "embedder",
    verify: bool | None = None,
    dtype: str = "float32",
    quantize: int | None = None,
    allow_pickle: bool = False,
    kept: str = "nothing was installed (the converter writes a temporary folder first)",
) -> str:
    """Convert `src` into `dst`; returns the verification summary ("" when not verified).

    `verify=None` (the default everywhere) compares with transformers when it is importable and
    skips the comparison when it is not; True insists on it.
    """
    if _loader is None:
        raise ConvertError("this build has no model converter")
    if verify is None:
        verify = reference_available()
    try:
        convert_fn = _loader(kind)
        res = convert_fn(
            Path(src), Path(dst), dtype=dtype, quantize=quantize, allow_pickle=allow_pickle, verify=verify
        )
    except ImportError as ex:
        raise ConvertError(
            f"converting needs {ex.name or 'a missing package'}, not in this build"
            + ("" if not verify else " (verification needs torch and transformers)")
        ) from ex
    except FoveaError:
        raise
    except Exception as ex:  # converters raise ModelError (and subclasses) with a one-line reason
        if is_disk_full(ex):  # `kept` says what survives (a pull keeps its download)
            raise DiskFullError(
                Path(dst).parent, need_for(Path(dst).parent, 2 * _size(Path(src)) + 50 * MB), kept
            ) from ex
        raise ConvertError(str(ex).splitlines()[0] if str(ex) else type(ex).__name__) from ex
    return f"verified against transformers: {res.report.summary}" if res.report is not None else ""


def pull_job(name: str, dtype: str | None = None) -> Generator[JobProgress, None, str]:
    """Pull registry model `name` (download, check, convert, install) as a job; returns the name.
    `fovea models pull` and the window (welcome dialog, Preferences) run this one job."""
    from app.core.jobs import as_job
    from app.core.model_pull import pull

    yield from as_job(JobKind.PULL, pull(name, dtype=dtype))
    return name


def install_job(src: Path) -> Generator[JobProgress, None, str]:
    """Convert a downloaded Hugging Face folder into the models folder (one step, the default verify);
    returns the installed folder."""
    from app.core.paths import models_dir

    dst = models_dir() / src.name
    yield JobProgress(0, 0, f"{JobKind.CONVERT.label} {src.name}…")
    convert_model(src, dst)
    return str(dst)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
