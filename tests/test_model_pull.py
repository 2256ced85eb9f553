"""`fovea models pull`: download, integrity checks, conversion and install, against a local fake hub.

The fake serves a random tiny CLIP checkpoint from a folder and lists it the way the hub does
(sizes for every file, sha256 for the LFS weights); no test touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from app.core.model_pull import (
    HubDownloader,
    IntegrityError,
    OfflineError,
    RemoteFile,
    check_safetensors,
    pull,
    sha256_of,
)
from app.core.paths import models_dir

ROOT = Path(__file__).resolve().parents[1]
NAME, REPO = "clip-vit-b32", "openai/clip-vit-base-patch32"  # a registry name, served by the fake


class LocalHub:
    """A `Downloader` over a local folder; `damage(path)` corrupts files as they arrive."""

    def __init__(self, repos: dict[str, Path], damage: Callable[[Path], None] | None = None) -> None:
        self.repos, self.damage = repos, damage
        self.fetched: list[list[str]] = []  # what pull asked for, per call
        self.copied: list[str] = []  # what actually had to be transferred

    def list_files(self, repo_id: str) -> list[RemoteFile]:
        root = self.repos[repo_id]
        out = []
        for p in sorted(root.rglob("*")):
            if p.is_file():
                lfs = p.suffix in (".safetensors", ".bin")
                out.append(
                    RemoteFile(
                        p.relative_to(root).as_posix(), p.stat().st_size, sha256_of(p) if lfs else None
                    )
                )
        # Hub repos carry files a model folder does not need; pull must not fetch them.
        out.append(RemoteFile("flax_model.msgpack", 10, "0" * 64))
        return out

    def fetch(self, repo_id: str, files: Sequence[str], dest: Path) -> None:
        self.fetched.append(list(files))
        for f in files:
            target = dest / f
            if target.exists():  # resumable: what is already there is kept
                continue
            shutil.copy2(self.repos[repo_id] / f, target)
            self.copied.append(f)
            if self.damage and target.suffix == ".safetensors":
                self.damage(target)


@pytest.fixture(autouse=True)
def converters_registered() -> None:
    """What the `fovea` entry point does before any command: core converts through converters/."""
    from app.cli import _load_converter
    from app.core.model_install import register_converters

    register_converters(_load_converter)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.builders.clip import make_clip_checkpoint

    return make_clip_checkpoint(tmp_path_factory.mktemp("hub") / "clip", seed=3)


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FOVEA_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 1000])


def flip_bit_in_data(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[-100] ^= 0x10  # inside the last tensor's bytes: the header still parses
    p.write_bytes(bytes(data))


def test_pull_downloads_checks_converts_and_installs_a_model_that_embeds(
    checkpoint: Path, data_dir: Path
) -> None:
    hub = LocalHub({REPO: checkpoint})
    steps = list(pull(NAME, downloader=hub))
    dst = models_dir() / NAME
    assert steps[-1].stage == "done" and str(dst) in steps[-1].message
    assert "verified against transformers" in steps[-1].message  # torch is here, so the reference ran
    assert "flax_model.msgpack" not in hub.fetched[0] and "config.json" in hub.fetched[0]
    assert not (data_dir / "downloads" / NAME).exists()  # the download is removed once installed

    from app.core.backends import open_embedder

    emb = open_embedder(dst, "mlx")
    rows = emb.embed_texts(["a photo of a cat", "a dog"])
    assert rows.shape == (2, 16) and np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    again = list(pull(NAME, downloader=hub))
    assert len(again) == 1 and "already installed" in again[0].message and len(hub.fetched) == 1


@pytest.mark.parametrize("damage", [truncate, flip_bit_in_data], ids=["truncated", "bit-flipped"])
def test_a_corrupted_download_is_refused_and_nothing_is_installed(
    checkpoint: Path, data_dir: Path, damage: Callable[[Path], None]
) -> None:
    with pytest.raises(IntegrityError) as e:
        list(pull(NAME, downloader=LocalHub({REPO: checkpoint}, damage)))
    assert "model.safetensors" in str(e.value) and "\n" not in str(e.value)
    assert not (models_dir() / NAME).exists()
    assert not any(models_dir().glob("*")) if models_dir().exists() else True
    # The bad file is deleted, the good ones stay: a retry fetches only what is missing.
    assert not (data_dir / "downloads" / NAME / "model.safetensors").exists()
    assert (data_dir / "downloads" / NAME / "config.json").exists()
    retry = LocalHub({REPO: checkpoint})
    steps = list(pull(NAME, downloader=retry, verify=False))
    assert retry.copied == ["model.safetensors"]
    assert steps[-1].stage == "done" and (models_dir() / NAME / "model.safetensors").is_file()
    assert any(s.stage == "skip" for s in steps)  # saying the reference check was skipped


def test_safetensors_header_check_catches_truncation_without_any_hash(
    checkpoint: Path, tmp_path: Path
) -> None:
    good = tmp_path / "good.safetensors"
    shutil.copy2(checkpoint / "model.safetensors", good)
    assert check_safetensors(good) > 10
    truncate(good)
    with pytest.raises(IntegrityError, match="truncated"):
        check_safetensors(good)
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    with pytest.raises(IntegrityError, match="header length"):
        check_safetensors(bogus)
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}).encode()
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(struct.pack("<Q", len(header)) + header + bytes(12))
    with pytest.raises(IntegrityError, match="shape needs 16"):
        check_safetensors(wrong)


def test_offline_hub_gives_a_one_line_reason(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline"):
        list(pull(NAME, downloader=HubDownloader()))
    assert not (models_dir() / NAME).exists()


def test_cli_pull_when_the_hub_is_unreachable_exits_1_with_one_line(tmp_path: Path) -> None:
    # A closed local port stands in for "no network": the real client, a real connection refusal.
    env = dict(os.environ, FOVEA_DATA_DIR=str(tmp_path), HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_OFFLINE="0")
    r = subprocess.run(
        [sys.executable, "-m", "app", "models", "pull", NAME],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("fovea: ") and "network" in last and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "app", "models", "pull", "no-such-model"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "not a registry model" in r.stderr


@pytest.mark.parametrize(
    ("asked", "reference", "used"), [(None, True, True), (None, False, False), (False, True, False)]
)
def test_convert_model_has_one_verify_default(tmp_path, monkeypatch, asked, reference, used) -> None:
    """CLI `models convert`, `models pull` and Preferences share it: verify when transformers is there."""
    from types import SimpleNamespace

    from app.core import model_install

    calls: list[dict] = []
    model_install.register_converters(
        lambda kind: lambda src, dst, **kw: calls.append(kw) or SimpleNamespace(report=None)
    )
    monkeypatch.setattr(model_install, "reference_available", lambda: reference)
    assert model_install.convert_model(tmp_path / "src", tmp_path / "dst", verify=asked) == ""
    assert calls[0]["verify"] is used


def test_convert_model_without_a_registered_converter_says_so(monkeypatch) -> None:
    from app.core import model_install

    monkeypatch.setattr(model_install, "_loader", None)
    with pytest.raises(model_install.ConvertError, match="no model converter"):
        model_install.convert_model(Path("a"), Path("b"))


def test_pulls_default_to_float16_on_metal_and_float32_stays_available(
    checkpoint: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import mlx_models.runtime

    from app.core import model_pull

    assert (
        model_pull.default_pull_dtype("gpu") == "float16"
        and model_pull.default_pull_dtype("cpu") == "float32"
    )
    monkeypatch.setattr(mlx_models.runtime, "device_name", lambda: "gpu")  # as on a Mac
    steps = list(pull(NAME, downloader=LocalHub({REPO: checkpoint})))
    cfg = json.loads((models_dir() / NAME / "config.json").read_text())
    assert cfg["fovea"]["dtype"] == "float16" and any("(float16)" in s.message for s in steps)
    # The float16 conversion passed the converter's own check against transformers (cosine >= 0.999).
    assert "verified against transformers" in steps[-1].message
    shutil.rmtree(models_dir() / NAME)
    list(pull(NAME, downloader=LocalHub({REPO: checkpoint}), dtype="float32"))
    assert json.loads((models_dir() / NAME / "config.json").read_text())["fovea"]["dtype"] == "float32"
