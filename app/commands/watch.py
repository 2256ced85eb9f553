"""`fovea index --watch`: keep following changes under the roots with watchdog, re-indexing in batches."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.core.api import Library
from app.core.errors import FoveaError

SETTLE_S = 2.0  # wait for a burst of changes (a copy of 500 photos) to settle before re-indexing


def watch(lib: Library, folders: list[Path], stop: threading.Event | None = None) -> int:
    """Re-index after each settled burst of changes until Ctrl-C (or `stop`, for tests)."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError as e:
        raise FoveaError("--watch needs the watchdog package (pip install watchdog)") from e
    from app.commands.index import run_index
    from app.commands.progress import graceful_interrupt, say

    dirty = threading.Event()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            # Only changes: inotify also reports opens and reads, which our own indexing would cause.
            if event.event_type in ("created", "modified", "moved", "deleted", "closed"):
                dirty.set()

    observer = Observer()
    for f in folders:
        observer.schedule(Handler(), str(f), recursive=True)
    observer.start()
    say(f"watching {len(folders)} folder(s); Ctrl-C to stop")
    # A stop signal (Ctrl-C, SIGTERM, SIGHUP) ends the re-index in flight after its batch, then the watch.
    with graceful_interrupt() as signalled:
        try:
            while not (stop and stop.is_set()) and not signalled():
                if dirty.wait(timeout=0.5):
                    time.sleep(SETTLE_S)
                    dirty.clear()
                    run_index(lib, [f.resolve() for f in folders])
        finally:
            observer.stop()
            observer.join()
    if signalled():
        say(f"fovea: stopped watching ({signalled.name}); everything indexed so far is saved")
        return signalled.exit_code
    return 0
