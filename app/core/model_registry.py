"""Known real checkpoints that `fovea models pull` can fetch and convert, and model name resolution."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.errors import UsageError
from app.core.paths import demo_model_dir, models_dir


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    repo_id: str  # Hugging Face repo
    kind: str  # "embedder" or "captioner"
    download_mb: int  # approximate size of the safetensors download
    note: str = ""


REGISTRY: tuple[RegistryEntry, ...] = (
    RegistryEntry("clip-vit-b32", "openai/clip-vit-base-patch32", "embedder", 605),
    RegistryEntry("clip-vit-b16", "openai/clip-vit-base-patch16", "embedder", 599),
    RegistryEntry("clip-vit-l14", "openai/clip-vit-large-patch14", "embedder", 1710),
    RegistryEntry("siglip-base", "google/siglip-base-patch16-224", "embedder", 813),
    RegistryEntry("siglip-so400m", "google/siglip-so400m-patch14-384", "embedder", 3510),
    RegistryEntry(
        "siglip2-base", "google/siglip2-base-patch16-224", "embedder", 1500, "needs the siglip2 tokenizer"
    ),
    RegistryEntry("llava-interleave-qwen-0.5b", "llava-hf/llava-interleave-qwen-0.5b-hf", "captioner", 1790),
)

DEMO_NAME = "demo"


def entry(name: str) -> RegistryEntry | None:
    return next((e for e in REGISTRY if e.name == name), None)


def installed_models() -> list[Path]:
    """Model folders under the user's models directory (those with a config.json)."""
    root = models_dir()
    return sorted(p for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []


def model_choices() -> str:
    """What would be a model, in one clause: the demo, installed folders, and how to get more."""
    names = [DEMO_NAME] + [p.name for p in installed_models()]
    return (
        f"models you can use: {', '.join(names)}, or a folder holding config.json, model.safetensors "
        "and the tokenizer files (`fovea models list`; `fovea models pull NAME` gets a real one)"
    )


def resolve_model(name_or_path: str | None) -> Path:
    """A model folder from a path, an installed registry name, or `demo` (the default)."""
    if not name_or_path or name_or_path == DEMO_NAME:
        return demo_model_dir()
    p = Path(name_or_path).expanduser()
    installed = models_dir() / name_or_path
    for folder in (p, installed):
        if folder.is_dir():
            if not (folder / "config.json").is_file():
                raise UsageError(f"{folder}: not a model folder (no config.json); {model_choices()}")
            return folder
    if entry(name_or_path):
        raise UsageError(f"model {name_or_path!r} is not installed; run `fovea models pull {name_or_path}`")
    raise UsageError(
        f"model {name_or_path!r}: no such folder and not a registry name (see `fovea models list`)"
    )
