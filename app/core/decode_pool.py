"""Decoding in worker processes: a decoder that crashes or hangs costs one file, never the run.

Native decoders (libjpeg, libtiff, libheif, LibRaw, ...) can segfault, abort or spin on hostile
files; in a thread that takes the whole app down. Here each worker process gets a few paths at a
time and sends back one small, model-size array per file (the model's preprocessed input when the
embedder's image processor can travel, else the draft-reduced RGB). A worker that dies costs the
file it was on ("decoder crashed"), one past the per-file limit is killed ("decoder timed out after
N s"; time spent waiting for a core does not count, see app.core.decode_sched); its other files go to
a fresh worker. Python warnings and whatever native code writes to the
worker's stderr are captured per file into `notes`, never printed on the terminal.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing as mp
import os
import pickle
import queue
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from app.core.decode_sched import Priority, apply_priority, out_of_time, read_run_wait
from app.core.errors import FoveaError

NOTES_MAX = 2000  # characters of captured messages kept per file
MAX_SILENT_DEATHS = 3  # fresh workers dying before any answer: the pool itself is broken, not a file
STARTUP_S = 120.0  # a fresh worker's imports on a loaded machine are not a file's fault
CHUNK = 4  # paths sent to a worker at once: fewer round trips, yet a crash requeues at most 3 others


@dataclass(frozen=True)
class DecodeJob:
    """What every worker does with a path; sent once, when the worker starts."""

    min_side: int  # decode reduced, but never below this (JPEG draft, box reduce)
    # A picklable settings-only processor, called as preprocess(image, full_size), or None. full_size is
    # the photo's upright size, of which a draft-decoded image is a reduction (see mlx_models.common.reduced).
    preprocess: Callable[..., np.ndarray] | None = None
    decoder: str = "app.core.decode:open_image"  # module:function; tests inject misbehaving ones
    priority: Priority = Priority()  # the indexer's yield to the model (app.core.decode_sched)


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # preprocess(image), or the upright RGB image as uint8 (H, W, 3)
    width: int
    height: int
    taken_at: str | None
    camera: str | None
    notes: str | None = None  # captured warnings and decoder messages


@dataclass(frozen=True)
class Failed:
    reason: str | None  # None: the file vanished
    notes: str | None = None


Outcome = Decoded | Failed


class DecodeWorkersError(FoveaError):
    """The worker processes cannot run at all (a broken install), as opposed to one bad file."""


def _load(spec: str) -> Callable[..., Any]:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _worker(conn: Connection, preload: tuple[str, ...] = ()) -> None:
    """Worker process: stderr to a private file; imports; then the job; per path: decode, capture
    messages, send the outcome. The job comes after the imports, so a worker can start before the
    model is loaded (`prestart`); `preload` names the modules the job will need (its processor's)."""
    from app.core.decode import DecodeError

    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)  # native libraries write to fd 2: keep it off the user's terminal
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - unpickling the job that needs it reports the failure as before
            pass
    try:
        job: DecodeJob = conn.recv()
    except EOFError:  # a spare that was never used
        return
    applied = apply_priority(job.priority)
    decode = _load(job.decoder)
    conn.send(("ready", applied))  # imports done: from here on, a death is the file's fault
    while True:
        try:
            paths = conn.recv()
        except EOFError:
            return
        if paths is None:
            return
        for idx, path in paths:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    d = decode(Path(path), min_side=job.min_side)
                    if job.preprocess:
                        pixels = job.preprocess(d.image, (d.width, d.height))
                    else:
                        pixels = np.asarray(d.image, np.uint8)
                    out: Outcome = Decoded(pixels, d.width, d.height, d.taken_at, d.camera)
                except FileNotFoundError:
                    out = Failed(None)
                except DecodeError as e:
                    out = Failed(e.reason)
                except Exception as e:  # noqa: BLE001 - a decoder bug is this file's problem, not the run's
                    out = Failed(f"{type(e).__name__}: {e}")
            notes = _notes(caught, log)
            conn.send((idx, replace(out, notes=notes) if notes else out))


def _notes(caught: list[warnings.WarningMessage], log: Any) -> str | None:
    """This file's warnings and stderr output, deduplicated, one line each; the stderr file is emptied."""
    os.lseek(2, 0, os.SEEK_SET)
    raw = os.read(2, 1 << 16) if os.fstat(2).st_size else b""
    os.ftruncate(2, 0)
    os.lseek(2, 0, os.SEEK_SET)
    lines = [f"{w.category.__name__}: {w.message}" for w in caught]
    lines += raw.decode("utf-8", "replace").splitlines()
    seen = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    return "\n".join(seen)[:NOTES_MAX] or None


@dataclass
class _Slot:
    """One worker process and the indices it holds, in the order it works on them."""

    proc: Any
    conn: Connection
    held: deque[int] = field(default_factory=deque)
    started: float = 0.0  # when the file it is on now started (monotonic)
    limit: float = 0.0  # that file's limit, in time not spent waiting for a core
    waited0: float | None = None  # the worker's run-queue wait when that file started (None: unknown)
    deadline: float = 0.0  # the earliest it can run out of time: started + limit + the wait seen so far
    answered: bool = False  # said it is ready (a worker that never does could not start at all)


class DecodePool:
    """`workers` decode processes; `run(paths)` yields (index, Outcome) in order, `depth` at most ahead."""

    def __init__(
        self,
        job: DecodeJob,
        workers: int,
        timeout_s: float = 60.0,
        run_wait: Callable[[int], float | None] = read_run_wait,
    ) -> None:
        self.job, self.timeout_s = job, timeout_s
        self._run_wait = run_wait  # seconds a process has waited for a core (tests inject a starved one)
        # The priority the workers report they got (Priority.describe's words).
        self.applied: str | None = None
        self._slots = [self._start() for _ in range(max(1, workers))]
        self.restarts = 0
        self._silent_deaths = 0  # fresh workers in a row that died before answering once
        self._busy = threading.Lock()  # held by `pool_for` while a run uses this pool

    def _start(self) -> _Slot:
        """A prestarted spare if there is one (its imports are done or under way), else a new process."""
        with _SPARES_LOCK:
            slot = _SPARES.pop() if _SPARES else None
        if slot is None or not slot.proc.is_alive():
            slot = _spawn()
        try:
            slot.conn.send(self.job)
        except OSError:  # it died idle: its pipe is closed (the run sees the death and replaces it)
            pass
        return slot

    def close(self) -> None:
        """Stop the workers: idle ones hold nothing, so a short wait and then kill."""
        for s in self._slots:
            try:
                s.conn.send(None)
            except OSError:
                pass
        for s in self._slots:
            s.proc.join(timeout=0.5)
            if s.proc.is_alive():
                s.proc.kill()
                s.proc.join()
            s.conn.close()
        self._slots = []

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        paths: Sequence[Path],
        depth: int,
        finish: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        report_waits: bool = False,
    ) -> Iterator[tuple[int, Outcome] | None]:
        """Decode `paths`; a reader thread keeps the pipes drained so workers never wait on the consumer.

        `finish` (the parent-side preprocess, when the job has none) also runs on that thread, beside the model.
        `report_waits`: yield None when the next outcome is not there yet, before waiting for it (the
        indexer then embeds what it holds instead of idling the model).
        """
        state = _RunState(len(paths), depth, finish)
        pump = threading.Thread(target=self._pump, args=(paths, state), name="fovea-decode-pump", daemon=True)
        pump.start()
        try:
            for i in range(len(paths)):
                if report_waits:
                    with state.cond:
                        waiting = i not in state.results and state.error is None
                    if waiting:
                        yield None
                with state.cond:
                    while i not in state.results and state.error is None:
                        state.cond.wait()
                    if state.error is not None:
                        raise state.error
                    out = state.results.pop(i)
                    state.taken = i + 1
                    state.cond.notify_all()
                yield i, out
        finally:
            with state.cond:
                state.stop = True
                state.cond.notify_all()
            pump.join()
            for slot in self._slots:  # stopped early: late answers must not reach the next run
                if slot.held:
                    self._respawn(slot)

    def _pump(self, paths: Sequence[Path], st: _RunState) -> None:
        try:
            self._pump_loop(paths, st)
        except BaseException as e:  # noqa: BLE001 - surfaced to the consumer
            with st.cond:
                st.error = e
                st.cond.notify_all()

    def _pump_loop(self, paths: Sequence[Path], st: _RunState) -> None:
        retry: deque[int] = deque()
        nxt = 0
        while True:
            with st.cond:
                if st.stop or st.done == len(paths):
                    break
                ahead = st.taken + st.depth
            for slot in self._slots:  # hand work to idle workers, within the depth bound
                if slot.held:
                    continue
                if (
                    not slot.proc.is_alive()
                ):  # died between files (killed from outside): replace, blame no file
                    self._respawn(slot)
                batch = [retry.popleft() for _ in range(min(len(retry), CHUNK))]
                while len(batch) < CHUNK and nxt < len(paths) and nxt < ahead:
                    batch.append(nxt)
                    nxt += 1
                if batch:
                    slot.held.extend(batch)
                    self._start_file(
                        slot, self.timeout_s if slot.answered else max(self.timeout_s, STARTUP_S)
                    )
                    slot.conn.send([(i, str(paths[i])) for i in batch])
            busy = [s for s in self._slots if s.held]
            if not busy:
                with st.cond:  # everything handed out is consumed up to the bound: wait for the consumer
                    if not st.stop:
                        st.cond.wait(0.05)
                continue
            now = time.monotonic()
            timeout = max(0.0, min(s.deadline for s in busy) - now)
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=min(timeout, 0.5))
            for slot in busy:
                alive = self._drain(slot, st)
                if not slot.held:
                    continue
                if not alive or slot.proc.sentinel in ready:
                    slot.proc.join(timeout=5)  # EOF on its pipe: it is dying or dead
                if slot.proc.exitcode is not None:
                    code = slot.proc.exitcode
                    how = f"signal {-code}" if code < 0 else f"exit code {code}"
                    self._replace(slot, st, retry, f"decoder crashed ({how})")
                elif time.monotonic() > slot.deadline and self._out_of_time(slot):
                    self._replace(slot, st, retry, f"decoder timed out after {self.timeout_s:g} s")

    def _drain(self, slot: _Slot, st: _RunState) -> bool:
        """Take every outcome the worker has sent; False when its pipe is closed (the worker is gone)."""
        while slot.conn.poll():
            try:
                idx, out = slot.conn.recv()
            except (EOFError, OSError):
                return False
            if idx == "ready":
                slot.answered = True
                self._silent_deaths = 0
                self.applied = out
                self._start_file(slot, self.timeout_s)  # its first file starts now
                continue
            slot.held.remove(idx)
            self._start_file(slot, self.timeout_s)  # the next file starts now
            st.put(idx, out)
        return True

    def _start_file(self, slot: _Slot, limit: float) -> None:
        slot.started, slot.limit = time.monotonic(), limit
        slot.waited0 = self._run_wait(slot.proc.pid)
        slot.deadline = slot.started + limit

    def _out_of_time(self, slot: _Slot) -> bool:
        """Past its deadline: has the file had `limit` of time running or blocked? If the worker was
        starved meanwhile (low priority on a busy machine), the deadline moves by the wait."""
        now = self._run_wait(slot.proc.pid)
        waited = None if now is None or slot.waited0 is None else now - slot.waited0
        slot.deadline = slot.started + slot.limit + max(waited or 0.0, 0.0)
        return out_of_time(time.monotonic() - slot.started, waited, slot.limit)

    def _replace(self, slot: _Slot, st: _RunState, retry: deque[int], reason: str) -> None:
        """The file the worker was on fails with `reason`; the rest of its chunk goes to a fresh worker."""
        if not slot.answered:  # it died importing, before any file: no file is to blame
            self._silent_deaths += 1
            if self._silent_deaths >= MAX_SILENT_DEATHS:
                raise DecodeWorkersError(
                    f"decode workers keep exiting before their first file ({reason}); is this install complete?"
                )
            retry.extendleft(reversed(slot.held))
            self._respawn(slot)
            return
        culprit = slot.held.popleft()
        retry.extend(slot.held)
        self._respawn(slot)
        st.put(culprit, Failed(reason))

    def _respawn(self, slot: _Slot) -> None:
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join()
        slot.conn.close()
        self.restarts += 1
        fresh = self._start()
        slot.proc, slot.conn, slot.held, slot.answered = fresh.proc, fresh.conn, deque(), False


# fork is unsafe beside threads and Metal; macOS defaults to spawn
_CTX = mp.get_context("spawn")
_SPARES: list[_Slot] = []  # started by `prestart`, not yet given a job
_SPARES_LOCK = threading.Lock()


def _spawn(preload: tuple[str, ...] = ()) -> _Slot:
    parent, child = _CTX.Pipe()
    proc = _CTX.Process(target=_worker, args=(child, preload), daemon=True, name="fovea-decode")
    proc.start()
    child.close()
    return _Slot(proc, parent)


def prestart(workers: int, preload: tuple[str, ...] = ()) -> None:
    """Start up to `workers` decode processes now, without a job; the next pool adopts them.

    A worker's start (a new interpreter and Pillow's plugins) takes about a second on a small machine:
    call this before loading the model so that it happens meanwhile, with the modules that the job
    will import (`preload`: the model's image processor). Spares never used exit with the process
    (they are daemons; `close_spares` ends them earlier)."""
    with _SHARED_LOCK:
        if _SHARED:  # a started pool is kept for reuse: it needs no new processes
            return
    with _SPARES_LOCK:
        missing = max(0, workers - len(_SPARES))
        _SPARES.extend(_spawn(preload) for _ in range(missing))


def close_spares() -> None:
    with _SPARES_LOCK:
        spares = _SPARES[:]
        _SPARES.clear()
    for s in spares:
        s.conn.close()  # the worker's recv() sees EOF and returns
        s.proc.join(timeout=0.5)
        if s.proc.is_alive():
            s.proc.kill()
            s.proc.join()


atexit.register(close_spares)


_SHARED: dict[tuple[bytes, int, float], DecodePool] = {}
_SHARED_LOCK = threading.Lock()


@contextmanager
def pool_for(job: DecodeJob, workers: int, timeout_s: float) -> Iterator[DecodePool]:
    """A started pool for `job`, kept for the next run (workers start once per process, not per index
    run: the GUI's and --watch's re-index runs and the test suite start no new processes); a run that
    finds it busy gets a private pool."""
    key = (pickle.dumps(job), workers, timeout_s)  # processors hold dicts: compare by value, not hash
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = _SHARED[key] = DecodePool(job, workers, timeout_s)
            atexit.register(pool.close)
    if pool._busy.acquire(blocking=False):
        try:
            yield pool
        finally:
            pool._busy.release()
    else:
        with DecodePool(job, workers, timeout_s) as private:
            yield private


def close_shared() -> None:
    """Stop the kept pools and the spares (as at exit); the next run starts afresh (benches, tests)."""
    with _SHARED_LOCK:
        pools = list(_SHARED.values())
        _SHARED.clear()
    for pool in pools:
        pool.close()
    close_spares()


_ONE_OFF: dict[tuple[int, str, float], queue.Queue[DecodePool]] = {}
_ONE_OFF_STARTED: dict[tuple[int, str, float], int] = {}
ONE_OFF_WORKERS = 2  # per size: the GUI's thumbnail threads share them, a third waits its turn


def decode_isolated(
    path: Path, min_side: int, decoder: str = DecodeJob.decoder, timeout_s: float = 60.0
) -> Decoded:
    """One file, decoded in a worker process, from any thread (the GUI's thumbnail and preview loaders).

    Returns the upright RGB (uint8 pixels, reduced to >= min_side). Raises DecodeError (crash and
    timeout included) or FileNotFoundError, as open_image does in-process.
    """
    from app.core.decode import DecodeError

    key = (min_side, decoder, timeout_s)
    with _SHARED_LOCK:
        idle = _ONE_OFF.setdefault(key, queue.Queue())
        start = _ONE_OFF_STARTED.get(key, 0) < ONE_OFF_WORKERS and idle.empty()
        if start:
            _ONE_OFF_STARTED[key] = _ONE_OFF_STARTED.get(key, 0) + 1
    if start:
        pool = DecodePool(DecodeJob(min_side, None, decoder), 1, timeout_s)
        atexit.register(pool.close)
    else:
        pool = idle.get()
    try:
        ((_, out),) = pool.run([path], 1)
    finally:
        idle.put(pool)
    if isinstance(out, Failed):
        if out.reason is None:
            raise FileNotFoundError(path)
        raise DecodeError(path, out.reason)
    return out


class _RunState:
    def __init__(self, n: int, depth: int, finish: Callable[[np.ndarray], np.ndarray] | None) -> None:
        self.finish = finish
        self.cond = threading.Condition()
        self.results: dict[int, Outcome] = {}
        self.taken = 0  # the consumer has taken every index below this
        self.done = 0
        self.depth = max(1, depth)
        self.stop = False
        self.error: BaseException | None = None

    def put(self, idx: int, out: Outcome) -> None:
        if self.finish is not None and isinstance(out, Decoded):
            try:
                out = replace(out, pixels=self.finish(out.pixels))
            except Exception as e:  # noqa: BLE001 - one image the model's preprocessing refuses
                out = Failed(f"preprocessing failed: {type(e).__name__}: {e}", out.notes)
        with self.cond:
            self.results[idx] = out
            self.done += 1
            self.cond.notify_all()
