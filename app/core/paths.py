"""Where things live: bundled resources (frozen or from source) and per-user data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "Fovea"


def resources_dir() -> Path:
    """The `resources/` folder, inside a PyInstaller bundle or next to the source tree."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def user_data_dir() -> Path:
    """Per-user data (libraries, thumbnails, models); FOVEA_DATA_DIR overrides it for tests."""
    override = os.environ.get("FOVEA_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path() -> Path:
    return user_data_dir() / "library.sqlite"


def models_dir() -> Path:
    return user_data_dir() / "models"


def demo_model_dir() -> Path:
    return resources_dir() / "models" / "fovea-demo-clip"
