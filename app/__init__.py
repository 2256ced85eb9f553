"""Fovea: on-device visual search for photo libraries."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read on first use: importlib.metadata pulls in email/zipfile (~30 ms), which a search never needs.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("fovea-search")
    except PackageNotFoundError:  # running from a source tree that was never installed
        value = "0.0.0+src"
    globals()["__version__"] = value
    return value
