"""Embedding on a Ray cluster (`fovea index --engine ray`): Ray Data decodes and embeds, this process stores.

The pipeline is read -> decode (an actor pool; each actor runs the hardened decoder in its own
`DecodePool` process, so a crash or hang costs one file with the local reasons) -> embed (an actor
pool holding the model, on a GPU where the cluster has one) -> back here, where `app.core.indexer`
commits in its usual batched transactions. Only this module imports ray, and only `--engine ray`
imports this module (the optional `cluster` extra).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.backends import Embedder
from app.core.decode_pool import Decoded, DecodeJob, DecodePool, Failed
from app.core.embed_engine import Embedded
from app.core.errors import FoveaError
from app.core.path_map import PathMap

RAY_VERSION = "2.60.0"  # the `cluster` extra's pin; driver and workers must run the same Ray
# Files per Ray block: small enough that a lost worker costs few files and results stream back
# steadily (each block is one commit's worth of progress), large enough to amortise task overhead.
CHUNK = 16
TRIES = 3  # a block whose worker dies is retried this often before its files go to the one-by-one pass
ISOLATE_REASON = "the cluster could not process this file: its worker failed {n} times ({error})"


class ClusterError(FoveaError):
    """Ray is missing, unreachable, or its workers cannot load the model."""


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how to run; `address` None starts a private Ray on this machine."""

    address: str | None = None  # "ray://head:10001" (Ray Client) or "auto"/"head:6379" on a cluster node
    path_map: PathMap = field(default_factory=PathMap)
    backend: str = "auto"  # per worker: torch on CUDA where present, else MLX (as `--backend auto` locally)
    decode_actors: int | None = None  # None: two per cluster CPU left after the embedders (at least 1)
    embed_actors: int | None = None  # None: one per GPU, or 1 on a CPU-only cluster
    chunk: int = CHUNK
    decode_timeout_s: float = 60.0


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ClusterError(
            "indexing on a Ray cluster needs Ray Data: pip install -e '.[cluster]' (ray[data]=="
            f"{RAY_VERSION}) on this machine and on every worker"
        ) from e
    if ray.__version__ != RAY_VERSION:
        raise ClusterError(f"Ray {ray.__version__} is installed; Fovea is tested with Ray {RAY_VERSION}")
    return ray


def connect(address: str | None) -> Any:
    """ray, initialised: an existing connection is reused (tests start their own), else join or start one."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level=logging.ERROR,  # Ray's notices would land on the user's terminal
                log_to_driver=False,  # workers' output stays in Ray's logs, not on the user's terminal
                configure_logging=False,
            )
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError ...
            raise ClusterError(f"cannot reach the Ray cluster at {address or 'a local instance'}: {e}") from e
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # progress goes through the indexer's JobProgress, not Ray's bars
    ctx.print_on_execution_start = False
    ctx.enable_auto_log_stats = False
    ctx.max_errored_blocks = -1  # a block that keeps failing is dropped; its files go to the one-by-one pass
    return ray


# ---- worker side: Ray actors (plain classes; Ray Data creates them on the workers) ------------------
_TEXT = ("reason", "notes", "taken_at", "camera")  # optional strings travel as "" (Arrow-friendly, no nulls)


def _decoded_columns(ks: np.ndarray, outs: Sequence[Decoded | Failed]) -> dict[str, np.ndarray]:
    cols: dict[str, list] = {c: [] for c in ("ok", "vanished", "pixels", "shape", "dtype", "width", "height")}
    cols.update({c: [] for c in _TEXT})
    for out in outs:
        ok = isinstance(out, Decoded)
        px = np.ascontiguousarray(out.pixels) if ok else np.zeros((0, 0, 0), np.uint8)
        cols["ok"].append(ok)
        cols["vanished"].append(not ok and out.reason is None)
        cols["pixels"].append(px.tobytes())
        cols["shape"].append(list(px.shape))
        cols["dtype"].append(px.dtype.str)
        cols["width"].append(out.width if ok else 0)
        cols["height"].append(out.height if ok else 0)
        cols["reason"].append("" if ok else out.reason or "")
        cols["notes"].append(out.notes or "")
        cols["taken_at"].append((out.taken_at or "") if ok else "")
        cols["camera"].append((out.camera or "") if ok else "")
    arrays = {
        c: np.array(v, dtype=object if c in ("pixels", *_TEXT, "dtype") else None) for c, v in cols.items()
    }
    arrays["shape"] = np.array(cols["shape"], dtype=np.int64).reshape(len(outs), 3)
    return {"k": np.asarray(ks, dtype=np.int64), **arrays}


class DecodeActor:
    """Decodes a block of paths in its own `DecodePool` worker process (crash and hang isolation as local)."""

    def __init__(self, job: DecodeJob, timeout_s: float) -> None:
        self.pool = DecodePool(job, 1, timeout_s)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [Path(os.fsdecode(bytes(p))) for p in batch["path"]]
        outs = dict(self.pool.run(paths, len(paths)))
        return _decoded_columns(batch["k"], [outs[i] for i in range(len(paths))])


class EmbedActor:
    """Holds the model; preprocesses (when the processor did not travel) and embeds a block in one call."""

    def __init__(self, folder: str, backend: str, model_id: str, finish_here: bool) -> None:
        from app.core.backends import open_embedder

        self.embedder = open_embedder(Path(folder), backend)
        if self.embedder.model_id != model_id:
            raise ClusterError(
                f"workers load {self.embedder.model_id} from {folder}, the library wants {model_id}: "
                "give every worker the same model folder (see docs/CLUSTER.md)"
            )
        self.finish_here = finish_here

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from PIL import Image

        n = len(batch["k"])
        ok = np.array(batch["ok"], dtype=bool)
        reason = np.array(batch["reason"], dtype=object)
        rows, pixels = [], []
        for i in np.flatnonzero(ok):
            px = np.frombuffer(batch["pixels"][i], dtype=np.dtype(str(batch["dtype"][i])))
            px = px.reshape(tuple(int(s) for s in batch["shape"][i]))
            if self.finish_here:  # as the local parent's finisher: the model's processor on the upright RGB
                try:
                    px = self.embedder.preprocess(Image.fromarray(px, "RGB"))
                except Exception as e:  # noqa: BLE001 - one image the model's preprocessing refuses
                    ok[i], reason[i] = False, f"preprocessing failed: {type(e).__name__}: {e}"
                    continue
            rows.append(i)
            pixels.append(px)
        vectors = np.zeros((n, self.embedder.dim), np.float32)
        if rows:
            vectors[rows] = self.embedder.embed_pixels(np.stack(pixels))  # (N, dim) normalised
        keep = {c: batch[c] for c in ("k", "vanished", "width", "height", "notes", "taken_at", "camera")}
        return {**keep, "ok": ok, "reason": reason, "vector": vectors}


# ---- driver side ------------------------------------------------------------------------------------
def _outcome(batch: dict[str, np.ndarray], i: int) -> Embedded | Failed:
    text = {c: (str(batch[c][i]) or None) for c in _TEXT}
    if not batch["ok"][i]:
        return Failed(None if batch["vanished"][i] else text["reason"], text["notes"])
    vector = np.asarray(batch["vector"][i], dtype=np.float32)
    return Embedded(
        vector,
        int(batch["width"][i]),
        int(batch["height"][i]),
        text["taken_at"],
        text["camera"],
        text["notes"],
    )


class RayEngine:
    """An `EmbedEngine` on Ray Data. Only the paths and the results cross the network; nothing is stored
    on the workers, so the driver being killed loses only the files in flight."""

    # A pipeline start (actors, model loading) costs seconds: the indexer's interleaved passes during a
    # scan wait for this many new files rather than its local 64.
    interleave_min = 20_000
    # The actor classes Ray Data instantiates on the workers (tests put in ones that die on a given file).
    decode_actor: type = DecodeActor
    embed_actor: type = EmbedActor

    def __init__(self, options: ClusterOptions) -> None:
        self.options = options
        self.ray: Any = None  # connected by start(), or by the first run(): creating one costs nothing

    def start(self) -> None:
        """Connect now (the CLI does, so a missing Ray or a wrong address fails before the scan)."""
        if self.ray is None:
            self.ray = connect(self.options.address)

    def run(self, paths: Sequence[Path], embedder: Embedder) -> Iterator[tuple[int, Embedded | Failed]]:
        from app.core.indexer import decode_job  # the local decode settings (min side, shipped processor)

        self.start()
        if embedder.folder is None:
            raise ClusterError("the cluster engine needs a model loaded from a folder the workers can read")
        job = decode_job(embedder)
        # Paths travel as bytes: a name that is not valid UTF-8 (surrogate-escaped here) is no Arrow string.
        items = [
            {"k": k, "path": os.fsencode(self.options.path_map.to_worker(p))} for k, p in enumerate(paths)
        ]
        left = set(range(len(paths)))
        error: BaseException | None = None
        # Pass 1 in blocks of `chunk`; pass 2 one file per block, so a file that kills its worker is isolated.
        for chunk in (self.options.chunk, 1):
            todo = [items[k] for k in sorted(left)]
            if not todo:
                break
            try:
                for batch in self._pipeline(todo, job, embedder, chunk).iter_batches(
                    batch_size=None, batch_format="numpy"
                ):
                    for i in range(len(batch["k"])):
                        k = int(batch["k"][i])
                        if k in left:  # a retried block may answer twice: the first answer counts
                            left.discard(k)
                            yield k, _outcome(batch, i)
            except ClusterError:
                raise
            except Exception as e:  # noqa: BLE001 - a Ray task/actor error: the files left go to the next pass
                if _is_model_error(e):
                    raise ClusterError(str(e)) from e
                error = e
        for k in sorted(left):
            why = f"{type(error).__name__}" if error is not None else "no result came back"
            yield k, Failed(ISOLATE_REASON.format(n=TRIES, error=why))

    def _pipeline(self, items: list[dict], job: DecodeJob, embedder: Embedder, chunk: int) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._build(items, job, embedder, chunk)

    def _build(self, items: list[dict], job: DecodeJob, embedder: Embedder, chunk: int) -> Any:
        ray, opts = self.ray, self.options
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        embedders = opts.embed_actors or max(1, gpus)
        # Each embed actor holds one CPU (and a GPU where there are GPUs); decoding gets the rest, two
        # half-CPU actors per CPU, as the local indexer runs a decode process per core beside the model.
        decoders = opts.decode_actors or max(1, 2 * (cpus - embedders))
        # Ray Data restarts actors and retries their tasks forever by default: a file that kills its
        # worker every time would never end, so a block is retried TRIES times. An actor may restart once
        # for every try of every block: a pool whose actor ran out of restarts waited forever for one to
        # take the blocks left (a stall, with a poison file's block first in the scan order).
        # (Passed as remote args: deprecated from 2.6x, fine for 2.60.)
        blocks = max(1, -(-len(items) // chunk))
        retry = {"max_restarts": (TRIES + 1) * blocks, "max_task_retries": TRIES}
        pool = ray.data.ActorPoolStrategy
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(
            self.decode_actor,
            fn_constructor_kwargs={"job": job, "timeout_s": opts.decode_timeout_s},
            batch_size=chunk,
            compute=pool(size=decoders),
            num_cpus=0.5,
            **retry,
        )
        embed_cpu = 1 if cpus >= 2 else 0.5  # a 1-CPU Ray must still fit a decoder beside the model
        embed_resources = {"num_gpus": 1, "num_cpus": embed_cpu} if gpus else {"num_cpus": embed_cpu}
        return ds.map_batches(
            self.embed_actor,
            fn_constructor_kwargs={
                "folder": opts.path_map.to_worker(embedder.folder),
                "backend": opts.backend,
                "model_id": embedder.model_id,
                "finish_here": job.preprocess is None,
            },
            batch_size=chunk,
            # One block at a time per embed actor: blocks queued on an actor that died were never
            # rescheduled (a stall, with a poison file's block first in the scan order).
            compute=pool(size=embedders, max_tasks_in_flight_per_actor=1),
            **embed_resources,
            **retry,
        )


def _is_model_error(e: BaseException) -> bool:
    """True when the embed actors refused the model (a set-up fault: no file is to blame)."""
    return "the library wants" in str(e) or "BackendError" in str(e)
