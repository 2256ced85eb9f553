"""`fovea models pull NAME`: download a registry checkpoint, check it, convert it into the models folder.

A generator of `PullProgress`; the CLI prints it, the GUI forwards it. The download goes to
`<user data>/downloads/NAME` (huggingface_hub resumes from there after an interruption); it is
checked against the hub's own file list (sizes, LFS sha256) and every safetensors header is parsed
before the converter reads a byte. A corrupted file is deleted and refused; nothing is installed.
The `Downloader` is injected so tests serve a local checkpoint without a network.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.errors import FoveaError, UsageError
from app.core.faults import MB, DiskFullError, ensure_free, is_disk_full, need_for
from app.core.model_install import ConvertError, convert_model, reference_available
from app.core.model_registry import REGISTRY, entry
from app.core.paths import models_dir, user_data_dir

# What a model folder needs; top-level files only (repos also carry onnx/, flax and pickle copies).
ALLOW_PATTERNS = (
    "config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "generation_config.json",
)
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip
_HEADER_LIMIT = 100 * 2**20  # safetensors caps its JSON header at 100 MB
POLL_S = 0.5
CONVERT_ROOM = 50 * MB  # tokenizer files, config, the converter's temporary folder
PARTIAL_KEPT = "what was downloaded so far is kept and the next pull resumes it"
CONVERT_KEPT = "the download is kept; the next pull converts it without downloading again"


class PullError(FoveaError):
    """A pull that failed or was refused; the message is one line."""


class OfflineError(PullError):
    """The hub cannot be reached (no network, or HF_HUB_OFFLINE=1)."""


class IntegrityError(PullError):
    """A downloaded file does not match what the hub announced, or is not a valid safetensors file."""


@dataclass(frozen=True)
class RemoteFile:
    """One file as the hub lists it; `sha256` is known for LFS files (the weights) only."""

    path: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class PullProgress:
    """One step of a pull. `stage` is list, download, check, convert, skip or done."""

    stage: str
    message: str
    done_bytes: int = 0
    total_bytes: int = 0

    def __str__(self) -> str:
        return self.message


class Downloader(Protocol):
    """Where checkpoints come from: the hub in the app, a local folder in tests."""

    def list_files(self, repo_id: str) -> list[RemoteFile]:
        """Every file of the repo with its size and, when known, its sha256."""
        ...

    def fetch(self, repo_id: str, files: Sequence[str], dest: Path) -> None:
        """Bring `files` into `dest` (blocking; resuming what an earlier call left there)."""
        ...


def wanted(files: Sequence[RemoteFile]) -> list[RemoteFile]:
    """The files a model folder needs, from a repo listing."""
    return [f for f in files if "/" not in f.path and any(fnmatch.fnmatch(f.path, p) for p in ALLOW_PATTERNS)]


def sha256_of(path: Path, chunk: int = 2**22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_safetensors(path: Path) -> int:
    """Parse the header and check that the tensors tile the data exactly; returns the tensor count."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise IntegrityError(f"{path.name}: truncated ({size} bytes, no safetensors header)")
        (n,) = struct.unpack("<Q", head)  # little-endian u64: the JSON header's length
        if n > min(_HEADER_LIMIT, size - 8):
            raise IntegrityError(f"{path.name}: header length {n} does not fit a {size}-byte file")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise IntegrityError(f"{path.name}: unreadable safetensors header ({e})") from e
    if not isinstance(header, dict):
        raise IntegrityError(f"{path.name}: safetensors header is not an object")
    spans = []
    for name, t in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(x) for x in t["data_offsets"])
            count = 1
            for d in t["shape"]:
                count *= int(d)
            nbytes = count * _DTYPE_BYTES[t["dtype"]]
        except (KeyError, TypeError, ValueError) as e:
            raise IntegrityError(f"{path.name}: malformed entry for tensor {name!r} ({e!r})") from e
        if end - begin != nbytes:
            raise IntegrityError(
                f"{path.name}: tensor {name!r} spans {end - begin} bytes, its shape needs {nbytes}"
            )
        spans.append((begin, end))
    spans.sort()
    data = size - 8 - n
    expected_end = 0
    for begin, end in spans:
        if begin != expected_end:
            raise IntegrityError(f"{path.name}: tensor data has a gap or overlap at byte {begin}")
        expected_end = end
    if expected_end != data:
        raise IntegrityError(
            f"{path.name}: tensors cover {expected_end} bytes but the file holds {data} (truncated?)"
        )
    return len(spans)


def check_download(folder: Path, files: Sequence[RemoteFile]) -> None:
    """Refuse (and delete) any file that is missing, of the wrong size or hash, or not valid safetensors."""
    for f in files:
        p = folder / f.path
        if not p.is_file():
            raise IntegrityError(f"{f.path}: missing after download")
        try:
            if f.size is not None and p.stat().st_size != f.size:
                raise IntegrityError(f"{f.path}: {p.stat().st_size} bytes, the hub lists {f.size}")
            if f.sha256 is not None and sha256_of(p) != f.sha256.lower():
                raise IntegrityError(f"{f.path}: sha256 differs from the hub's (corrupted download)")
            if p.suffix == ".safetensors":
                check_safetensors(p)
        except IntegrityError:
            p.unlink()  # a complete-but-wrong file would be reused on the next try
            raise


class HubDownloader:
    """huggingface_hub: `model_info(files_metadata=True)` for the listing, `snapshot_download` to fetch."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    @staticmethod
    def _offline(e: BaseException) -> OfflineError | None:
        from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

        names = {c.__name__ for c in type(e).__mro__}
        network = {"ConnectError", "ConnectionError", "ConnectTimeout", "TimeoutException", "NetworkError"}
        if isinstance(e, (OfflineModeIsEnabled, LocalEntryNotFoundError)) or names & network:
            return OfflineError(
                f"cannot reach the Hugging Face hub ({type(e).__name__}); pulling needs the network"
            )
        return None

    def _call(self, fn: Callable[[], object]) -> object:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise OfflineError("offline (HF_HUB_OFFLINE is set); pulling a model needs the network")
        try:
            return fn()
        except Exception as e:
            from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

            if is_disk_full(e):
                raise  # _download names the folder and the space to free
            if (off := self._offline(e)) is not None:
                raise off from e
            if isinstance(e, (GatedRepoError, RepositoryNotFoundError)):
                raise PullError(
                    f"the hub refused the repo ({type(e).__name__}); check the name or log in"
                ) from e
            raise PullError(
                f"download failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from e

    def list_files(self, repo_id: str) -> list[RemoteFile]:
        from huggingface_hub import HfApi

        info = self._call(lambda: HfApi(token=self.token).model_info(repo_id, files_metadata=True))
        return [
            RemoteFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs is not None else None)
            for s in info.siblings or []  # type: ignore[attr-defined]
        ]

    def fetch(self, repo_id: str, files: Sequence[str], dest: Path) -> None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()  # core never prints; progress comes from the folder's size
        self._call(
            lambda: snapshot_download(repo_id, allow_patterns=list(files), local_dir=dest, token=self.token)
        )


def _bytes_on_disk(folder: Path) -> int:
    """Bytes downloaded so far, including huggingface_hub's `.incomplete` files under `.cache/`."""
    total = 0
    for root, _, names in os.walk(folder):
        for n in names:
            try:
                total += os.stat(os.path.join(root, n)).st_size
            except OSError:  # renamed from .incomplete while we walked
                pass
    return total


def _download(
    downloader: Downloader, repo_id: str, files: Sequence[RemoteFile], dest: Path
) -> Iterator[PullProgress]:
    """Run the blocking fetch on a thread and report the folder's growth meanwhile."""
    total = sum(f.size or 0 for f in files)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            downloader.fetch(repo_id, [f.path for f in files], dest)
        except BaseException as e:  # re-raised on the caller's thread
            failure.append(e)

    t = threading.Thread(target=work, name="fovea-pull", daemon=True)
    t.start()
    last = -1
    while t.is_alive():
        t.join(POLL_S)
        done = min(_bytes_on_disk(dest), total) if total else 0
        if done != last:
            last = done
            pct = f" ({100 * done / total:.0f}%)" if total else ""
            yield PullProgress(
                "download", f"downloading {done / 1e6:.0f}/{total / 1e6:.0f} MB{pct}", done, total
            )
    if failure:
        if is_disk_full(failure[0]):
            left = max(total - _bytes_on_disk(dest), 0)
            raise DiskFullError(dest, need_for(dest, left + CONVERT_ROOM), PARTIAL_KEPT) from failure[0]
        raise failure[0]


def default_pull_dtype(device: str | None = None) -> str:
    """float16 where MLX runs on Metal (half the memory, and the GPU's native width), else float32.

    The converter's verification bound for float16 is a per-row cosine >= 0.999 against the float32
    reference (converters/verify.py HALF_MIN_COSINE; 0.999 for LLaVA's centred logits too).
    """
    if device is None:
        from mlx_models.runtime import device_name

        device = device_name()
    return "float16" if device == "gpu" else "float32"


def room_needed(files: Sequence[RemoteFile], already: int = 0) -> int:
    """Bytes a pull still needs on the data volume: the rest of the download, plus the converted
    float32 weights (twice the download when the checkpoint is float16/bfloat16) and a margin."""
    total = sum(f.size or 0 for f in files)
    weights = sum(f.size or 0 for f in files if f.path.endswith(".safetensors"))
    return max(total - already, 0) + 2 * weights + CONVERT_ROOM


def check_room(folder: Path, files: Sequence[RemoteFile]) -> None:
    """Refuse a pull up front when the disk cannot hold it (what is downloaded already counts)."""
    ensure_free(folder, room_needed(files, _bytes_on_disk(folder)), "nothing was downloaded or installed")


def pull(
    name: str,
    *,
    downloader: Downloader | None = None,
    verify: bool | None = None,
    keep_download: bool = False,
    dtype: str | None = None,
) -> Iterator[PullProgress]:
    """Download, check, convert and install registry model `name` into `models_dir()/name`.

    `verify=None` compares with transformers when it is importable and says so when it is not.
    `dtype=None` picks `default_pull_dtype()` (float16 on Metal); "float32" stays available.
    """
    e = entry(name)
    if e is None:
        raise UsageError(f"{name!r} is not a registry model (known: {', '.join(x.name for x in REGISTRY)})")
    dst = models_dir() / name
    if (dst / "config.json").is_file():
        yield PullProgress("done", f"{name} is already installed at {dst}")
        return
    downloader = downloader or HubDownloader()
    src = user_data_dir() / "downloads" / name

    yield PullProgress("list", f"pulling {name} from {e.repo_id} (~{e.download_mb} MB)")
    files = wanted(downloader.list_files(e.repo_id))
    if not any(f.path.endswith(".safetensors") for f in files) or not any(
        f.path == "config.json" for f in files
    ):
        raise PullError(f"{e.repo_id} has no config.json + safetensors weights to convert")
    src.mkdir(parents=True, exist_ok=True)
    check_room(src, files)
    t0 = time.monotonic()
    yield from _download(downloader, e.repo_id, files, src)

    n_sha = sum(f.sha256 is not None for f in files)
    yield PullProgress("check", f"checking {len(files)} files ({n_sha} against the hub's sha256)")
    check_download(src, files)

    if verify is None:
        verify = reference_available()
    if not verify:
        yield PullProgress("skip", "reference check skipped: torch/transformers are not in this build; "
                           "the download's sizes, hashes and headers were checked")  # fmt: skip
    dtype = dtype or default_pull_dtype()
    yield PullProgress(
        "convert", f"converting to MLX ({dtype}){' and verifying against transformers' if verify else ''}"
    )
    try:
        summary = convert_model(src, dst, kind=e.kind, verify=verify, dtype=dtype, kept=CONVERT_KEPT)
    except ConvertError as ex:
        raise PullError(f"{e.name}: {ex}") from ex
    if not keep_download:
        shutil.rmtree(src, ignore_errors=True)
    took = time.monotonic() - t0
    yield PullProgress(
        "done", f"installed {name} at {dst} in {took:.0f} s" + (f"; {summary}" if summary else "")
    )
