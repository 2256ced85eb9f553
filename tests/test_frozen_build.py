"""The packaged app: build the PyInstaller bundle from build.spec and drive the frozen `fovea`.

Linux builds the one-folder bundle (dist/fovea/); macOS builds Fovea.app and runs its inner binary.
The frozen binary runs in a bare environment (no PYTHONPATH, no virtualenv, PATH=/usr/bin:/bin, a
throwaway HOME), so it can only use what the bundle holds. Every frozen answer is compared with the
same command run from the source tree, so the bundle is checked for behaving like the code, not for
printing some fixed text: embeddings (demo model and a tiny CLIP), index + search over a folder with
HEIC photos, a caption from a tiny converted LLaVA (same tokens), and the MLX device (which must be
the GPU on macOS, or wherever FOVEA_REQUIRE_GPU=1). Prints the bundle size, the device and start-up
times (run with -s to see them). scripts/build_app.sh runs this file against the bundle it built;
FOVEA_FROZEN_DIST points it at a finished build and skips the build step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# tomllib is 3.11+; the project's one version line is simple enough to read directly.
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
VERSION = re.search(r'(?m)^version = "([^"]+)"', PYPROJECT).group(1)
SIZE_TARGET_MB = 350
BUILD_TIMEOUT_S = 900


def _folder_mb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("FOVEA_FROZEN_DIST"):
        return Path(os.environ["FOVEA_FROZEN_DIST"])
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.fail("PyInstaller is not installed: pip install -e '.[dev]'")
    tmp = tmp_path_factory.mktemp("frozen")
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(tmp / "dist"), "--workpath", str(tmp / "work"), str(ROOT / "build.spec")],
        cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-4000:]
    print(f"\n[frozen] build took {time.monotonic() - t0:.0f} s")
    return tmp / "dist"


@pytest.fixture(scope="module")
def frozen(dist: Path) -> Path:
    exe = (
        dist / "Fovea.app" / "Contents" / "MacOS" / "fovea"
        if sys.platform == "darwin"
        else dist / "fovea" / "fovea"
    )
    assert exe.is_file(), f"no frozen executable at {exe}"
    return exe


def _bundle_files(dist: Path) -> set[str]:
    return {p.relative_to(dist).as_posix() for p in dist.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def bundle_before(dist: Path, frozen: Path) -> set[str]:
    return _bundle_files(dist)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    # User data in a temp folder: the bundle must never write inside itself.
    return dict(
        os.environ,
        FOVEA_DATA_DIR=str(tmp_path / "data"),
        QT_QPA_PLATFORM="offscreen",
        HF_HUB_OFFLINE="1",
        HOME=str(tmp_path / "home"),
    )


# What the frozen app may see of the caller's environment: its own knobs, Qt's platform, the hub's.
_BARE_KEYS = ("FOVEA_", "QT_QPA_PLATFORM", "HF_", "HOME", "XDG_", "TMPDIR", "LANG")


def bare_env(env: dict[str, str]) -> dict[str, str]:
    """`env` without PYTHONPATH, VIRTUAL_ENV, the venv on PATH and the like: the bundle must be self-contained."""
    out = {k: v for k, v in env.items() if k.startswith(_BARE_KEYS)}
    out["PATH"] = "/usr/bin:/bin"
    return out


def run_frozen(
    exe: Path, *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=bare_env(env), timeout=timeout, cwd=exe.parent
    )


def run_source(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP in the Hugging Face layout (the demo model may not be trained yet)."""
    from tests.builders.clip import make_clip_checkpoint

    return make_clip_checkpoint(tmp_path_factory.mktemp("tiny") / "hf", seed=5)


@pytest.fixture(scope="module")
def tiny_model(tiny_hf: Path) -> Path:
    """`tiny_hf` converted from the source tree."""
    from converters.convert import convert

    return convert(tiny_hf, tiny_hf.parent / "mlx").dst


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    import pillow_heif
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    out = []
    for i in range(6):
        p = folder / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (48 + 8 * i, 64, 3), dtype=np.uint8)).save(p, quality=90)
        out.append(p)
    # iPhone photos: the bundle must decode HEIC (pillow-heif is a default dependency and a hidden import).
    for i in range(2):
        p = folder / f"phone{i}.heic"
        pixels = rng.integers(0, 255, (64, 56 + 8 * i, 3), dtype=np.uint8)
        pillow_heif.from_pillow(Image.fromarray(pixels)).save(p, quality=90)
        out.append(p)
    return out


def test_bundle_size_and_contents(dist: Path, frozen: Path, bundle_before: set[str]) -> None:
    root = frozen.parent.parent if sys.platform == "darwin" else frozen.parent
    mb = _folder_mb(root)
    print(f"\n[frozen] bundle {root.name}: {mb:.0f} MB (target <= {SIZE_TARGET_MB} MB)")
    names = {p.name.split("-")[0].split(".")[0] for p in root.rglob("*") if p.is_dir()}
    assert not names & {"torch", "transformers"}, "torch/transformers must stay out of the bundle"
    internal = root / "Contents" / "Resources" if sys.platform == "darwin" else root / "_internal"
    assert (internal / "resources" / "tags" / "default.txt").is_file()
    assert (internal / "resources" / "icons" / "fovea.png").is_file()
    assert mb <= SIZE_TARGET_MB


def test_frozen_version_and_start_up_time(frozen: Path, env: dict[str, str]) -> None:
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        r = run_frozen(frozen, "--version", env=env)
        times.append(time.monotonic() - t0)
        assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"fovea {VERSION}"
    t0 = time.monotonic()
    r = run_frozen(frozen, "models", "list", "--json", env=env)
    t_list = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    print(f"\n[frozen] start-up: --version {min(times):.2f} s (best of 3), `models list` {t_list:.2f} s")


def test_frozen_models_list_matches_source(frozen: Path, env: dict[str, str]) -> None:
    frozen_out = json.loads(run_frozen(frozen, "models", "list", "--json", env=env).stdout)
    source_out = json.loads(run_source("models", "list", "--json", env=env).stdout)
    assert frozen_out["registry"] == source_out["registry"]
    # The bundled demo model, when there is one, is found inside the bundle, not the source tree.
    for m in frozen_out["installed"]:
        if m["bundled"]:
            assert str(ROOT / "resources") not in m["path"]


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_DATA_HOME is where Linux keeps user data")
def test_frozen_user_data_lives_in_the_platform_folder(frozen: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FOVEA_DATA_DIR"}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg"))
    model = tmp_path / "xdg" / "Fovea" / "models" / "mine"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    r = run_frozen(frozen, "models", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert {"name": "mine", "path": str(model), "bundled": False} in json.loads(r.stdout)["installed"]


def test_frozen_pull_without_network_is_one_line(frozen: Path, env: dict[str, str]) -> None:
    # A closed local port: the bundled huggingface_hub really runs and really fails to connect.
    env = dict(env, HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9")
    r = run_frozen(frozen, "models", "pull", "clip-vit-b32", env=env)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    # The "pulling ..." progress line, then the one-line reason.
    assert len(lines) == 2 and lines[-1].startswith("fovea: ") and "network" in lines[-1]
    # The bundle points the hub's caches into Fovea's cache folder: nothing in ~/.cache.
    assert not (Path(env["HOME"]) / ".cache").exists()
    hub = Path(env["FOVEA_DATA_DIR"]) / "cache" / "huggingface"
    print(f"\n[frozen] hub cache: {sorted(p.name for p in hub.iterdir()) if hub.is_dir() else 'not created'}")


@pytest.mark.parametrize("which", ["demo", "tiny"])
def test_frozen_embed_equals_source_embed(
    frozen: Path, env: dict[str, str], tiny_model: Path, photos: list[Path], which: str
) -> None:
    """The bundled demo model (found inside the bundle) and a model folder outside it embed like source."""
    if which == "demo" and not (ROOT / "resources" / "models" / "fovea-demo-clip").is_dir():
        pytest.skip("no bundled demo model in the tree")
    model = "demo" if which == "demo" else str(tiny_model)
    args = ["--backend", "mlx", "--model", model, "embed", "--text", "a photo of a cat", "--text", "a dog"]
    for p in [*photos[:2], photos[-1]]:  # two JPEGs and a HEIC
        args += ["--image", str(p)]
    out_f, out_s = Path(env["FOVEA_DATA_DIR"]).parent / "f.npy", Path(env["FOVEA_DATA_DIR"]).parent / "s.npy"
    t0 = time.monotonic()
    r = run_frozen(frozen, *args, "--out", str(out_f), env=env)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    r = run_source(*args, "--out", str(out_s), env=env)
    assert r.returncode == 0, r.stderr
    a, b = np.load(out_f), np.load(out_s)
    diff = float(np.abs(a - b).max())
    print(
        f"\n[frozen] embed ({which} model) 3 images + 2 texts: {took:.2f} s cold, max |frozen - source| {diff:.1e}"
    )
    assert a.shape == b.shape and a.shape[0] == 5
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_frozen_reports_a_device_that_computes(frozen: Path, env: dict[str, str], tmp_path: Path) -> None:
    """`status` runs one kernel on MLX's default device; on macOS (or FOVEA_REQUIRE_GPU=1) it must be Metal."""
    r = run_frozen(frozen, "--db", str(tmp_path / "s.sqlite"), "status", "--json", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rt = json.loads(r.stdout)["runtime"]
    print(
        f"\n[frozen] MLX device: {rt['mlx_device']} ({'ok' if rt['mlx_device_ok'] else rt['mlx_device_error']})"
    )
    assert rt["mlx_device_ok"], rt["mlx_device_error"]
    # The bundle sends the Hugging Face caches into Fovea's cache folder (nothing in ~/.cache).
    cache = Path(env["FOVEA_DATA_DIR"]) / "cache"
    assert (rt["cache_dir"], rt["hf_home"]) == (str(cache), str(cache / "huggingface"))
    if sys.platform == "darwin" or os.environ.get("FOVEA_REQUIRE_GPU") == "1":
        assert rt["mlx_device"] == "gpu", f"the frozen app computes on {rt['mlx_device']}, not on Metal"


@pytest.fixture(scope="module")
def tiny_llava_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny LLaVA (SigLIP tower + Qwen2) in the Hugging Face layout."""
    from tests.builders.llava import make_llava_checkpoint

    return make_llava_checkpoint(tmp_path_factory.mktemp("llava") / "hf", preset="tiny-siglip-qwen2", seed=5)


@pytest.fixture(scope="module")
def tiny_llava(tiny_llava_hf: Path) -> Path:
    """`tiny_llava_hf` converted to MLX from the source tree."""
    from converters.convert import convert

    return convert(tiny_llava_hf, tiny_llava_hf.parent / "mlx").dst


def test_frozen_converts_a_llava_as_models_pull_does(
    frozen: Path, env: dict[str, str], tiny_llava_hf: Path, tiny_llava: Path, tmp_path: Path
) -> None:
    """`models pull` of a captioner ends in this conversion; in the bundle it runs without torch/transformers."""
    from safetensors.numpy import load_file

    r = run_frozen(
        frozen, "models", "convert", str(tiny_llava_hf), str(tmp_path / "out"), "--no-verify", env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ours, ref = load_file(tmp_path / "out" / "model.safetensors"), load_file(tiny_llava / "model.safetensors")
    assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref)


def test_frozen_caption_image_equals_source(
    frozen: Path, env: dict[str, str], tiny_llava: Path, photos: list[Path]
) -> None:
    """Captions in the bundle run mlx-lm's pieces without its transformers-importing __init__."""
    args = [
        "caption-image",
        str(photos[-1]),
        "--caption-model",
        str(tiny_llava),
        "--max-tokens",
        "8",
        "--json",
    ]
    t0 = time.monotonic()
    r = run_frozen(frozen, *args, env=env)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-3000:]
    s = run_source(*args, env=env)
    assert s.returncode == 0, s.stderr[-3000:]
    ours, ref = json.loads(r.stdout), json.loads(s.stdout)
    print(
        f"\n[frozen] caption-image (tiny LLaVA, HEIC input): {len(ours['tokens'])} tokens in {took:.2f} s, equal to source: {ours == ref}"
    )
    assert ours["tokens"] == ref["tokens"] and ours["text"] == ref["text"] and ours["tokens"]


def test_frozen_converter_writes_the_same_model_as_source(
    frozen: Path, env: dict[str, str], tiny_hf: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """The converter that `models pull` runs inside the app, without torch: same tensors as from source."""
    from safetensors.numpy import load_file

    r = run_frozen(frozen, "models", "convert", str(tiny_hf), str(tmp_path / "out"), "--no-verify", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    ours, ref = load_file(tmp_path / "out" / "model.safetensors"), load_file(tiny_model / "model.safetensors")
    assert ours.keys() == ref.keys() and all(np.array_equal(ours[k], ref[k]) for k in ref)
    # Reference verification needs transformers, which the bundle leaves out: the one default of
    # `models pull`, `models convert` and Preferences skips it there and says so in one line.
    r = run_frozen(frozen, "models", "convert", str(tiny_hf), str(tmp_path / "out2"), env=env)
    assert r.returncode == 0 and r.stderr.strip().count("\n") == 0 and "torch" in r.stderr, r.stderr[-3000:]
    assert (tmp_path / "out2" / "model.safetensors").is_file()


def _has_command(name: str) -> bool:
    return (ROOT / "app" / "commands" / f"{name}.py").is_file()


def test_frozen_demo_no_gui(frozen: Path, env: dict[str, str]) -> None:
    """index, search and tag on the bundled demo model, offline."""
    if not _has_command("demo") or not (ROOT / "resources" / "models" / "fovea-demo-clip").is_dir():
        pytest.skip("`fovea demo` or the bundled demo model is not in the tree yet")
    t0 = time.monotonic()
    r = run_frozen(frozen, "demo", "--no-gui", env=env, timeout=600)
    print(f"\n[frozen] demo --no-gui: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() and "Traceback" not in r.stderr
    assert 'search "red circle"' in r.stdout
    demo_db = Path(env["FOVEA_DATA_DIR"]) / "demo.sqlite"  # the demo keeps its own library
    status = run_frozen(frozen, "--db", str(demo_db), "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["images"] == 300 and info["by_status"].get("ok") == 300


def test_frozen_index_search_tag_match_source(
    frozen: Path, env: dict[str, str], tiny_model: Path, photos: list[Path], tmp_path: Path
) -> None:
    if not all(_has_command(c) for c in ("index", "search", "tags")):
        pytest.skip("index/search/tags commands are not all in the tree yet")
    answers = {}
    for who, run in (
        ("frozen", lambda *a: run_frozen(frozen, *a, env=env)),
        ("source", lambda *a: run_source(*a, env=env)),
    ):
        db = ["--db", str(tmp_path / f"{who}.sqlite"), "--backend", "mlx", "--model", str(tiny_model)]
        r = run(*db, "index", str(photos[0].parent))
        assert r.returncode == 0, f"{who}: {r.stderr[-2000:]}"
        r = run(*db, "search", "a photo of a cat", "-k", "3", "--json")
        assert r.returncode == 0, f"{who}: {r.stderr[-2000:]}"
        hits = [(Path(h["path"]).name, round(h["score"], 4)) for h in json.loads(r.stdout)["hits"]]
        r = run(*db, "tag")
        assert r.returncode == 0, f"{who}: {r.stderr[-2000:]}"
        status = json.loads(run(*db, "status", "--json").stdout)
        assert status["errors"] == [] and status["by_status"].get("ok") == len(photos), f"{who}: {status}"
        r = run(*db, "search", str(photos[-1]), "-k", "1", "--json")  # a HEIC photo finds itself
        top = json.loads(r.stdout)["hits"][0]["path"]
        assert r.returncode == 0 and Path(top).name == photos[-1].name, f"{who}: {r.stdout[-2000:]}"
        answers[who] = hits
    print(
        f"\n[frozen] index + search over {len(photos)} photos ({sum(p.suffix == '.heic' for p in photos)} HEIC): top 3 equal to source"
    )
    assert answers["frozen"] == answers["source"] and len(answers["frozen"]) == 3


def test_frozen_window_starts_offscreen_and_quits(frozen: Path, env: dict[str, str], tmp_path: Path) -> None:
    """Start the GUI on Qt's offscreen platform; it must come up without error and then quit.

    FOVEA_GUI_QUIT_AFTER_MS asks the app to quit by itself; until it honours that, a window still
    running after the grace period counts as started and is terminated.
    """
    run_env = dict(env, FOVEA_GUI_QUIT_AFTER_MS="3000")
    t0 = time.monotonic()
    p = subprocess.Popen(
        [str(frozen), "--db", str(tmp_path / "gui.sqlite"), "gui"],
        env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _, err = p.communicate(timeout=20)
        quit_by_itself = True
    except subprocess.TimeoutExpired:
        p.terminate()
        _, err = p.communicate(timeout=10)
        quit_by_itself = False
    took = time.monotonic() - t0
    assert "Traceback" not in err, err[-3000:]
    if quit_by_itself:
        assert p.returncode == 0, err[-3000:]
    print(
        f"\n[frozen] window: {'quit by itself' if quit_by_itself else 'still up after 20 s, terminated'} ({took:.1f} s)"
    )


def test_nothing_was_written_inside_the_bundle(dist: Path, bundle_before: set[str]) -> None:
    """Runs last: every frozen run above kept its data outside the bundle."""
    assert _bundle_files(dist) == bundle_before
