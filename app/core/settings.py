"""User preferences, a small JSON file in the user data directory."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from app.core.atomic import atomic_write
from app.core.paths import user_data_dir


@dataclass
class Settings:
    model: str = "demo"  # registry name, folder, or "demo"
    backend: str = "auto"
    min_score: float = 0.60
    min_margin: float = 0.10
    captions: bool = False
    appearance: str = "system"  # system | light | dark
    grid_cell: int = 168  # the grid's cell size in logical pixels (zoom), remembered between runs
    grid_fit: bool = False  # False: thumbnails fill square cells (centre crop); True: whole photos
    download_icloud: bool = False  # read (and so download) iCloud files that are not on this Mac
    thumbnail_cache_mb: int = 2048  # cap of the thumbnail/preview cache (app.core.cache.DEFAULT_CAP_MB)
    cluster_address: str = ""  # a Ray cluster the index jobs embed on (docs/CLUSTER.md); "": this machine

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        path = path or settings_path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return cls()  # first run or a damaged file: defaults, the file is rewritten on save
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: Path | None = None) -> None:
        path = path or settings_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:  # a crash never leaves half a settings file
            f.write(json.dumps(asdict(self), indent=2).encode("utf-8"))


def settings_path() -> Path:
    return user_data_dir() / "settings.json"
