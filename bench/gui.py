"""GUI benchmark (offscreen): a 100,000-item grid scrolled programmatically, search-as-you-type at 100k, and
the time from dropping a folder of real photos on a new window to the first thumbnails on screen.

    QT_QPA_PLATFORM=offscreen python bench/gui.py [--n 100000] [--dim 512]

Frame time = scroll one step + a synchronous repaint of the grid's viewport, with synthetic thumbnails
(64 distinct pixmaps, so the pixmap cache is not what is measured). Search refresh = from the query
leaving the search field to the grid showing the top 200 (embedding the text, the vector search,
the model reset and the repaint), through the same workers the app uses. Targets: p95 frame <= 16 ms,
search refresh <= 100 ms. Drop-to-first-thumbnails: a fresh window and library, a folder of real photographs
(scikit-image and matplotlib samples, copied to --drop-copies subfolders) dropped on the sidebar, timed until
the grid shows photos and until the first decoded thumbnail is painted (the fake embedder, so the time is
the app's, not the model's).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtGui import QColor, QPixmap  # noqa: E402

from app.core.api import Library  # noqa: E402
from app.core.backends import l2_normalize  # noqa: E402
from app.gui.app import make_app  # noqa: E402
from app.gui.grid_model import GridItem  # noqa: E402
from app.gui.main_window import MainWindow  # noqa: E402
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402


def populate(session: Library, n: int, dim: int, model_id: str) -> None:
    """n 'ok' images with random unit embeddings, written straight into the store."""
    rng = np.random.default_rng(0)
    st = session.store
    with st.transaction() as c:
        c.execute("INSERT INTO roots (id, path, state, added_at) VALUES (1, '/bench', 'online', 0)")
        c.executemany(
            "INSERT INTO images (id, root_id, path, size, status, taken_at, width, height) "
            "VALUES (?, 1, ?, 1000, 'ok', ?, 640, 480)",
            [
                (i, f"/bench/{i // 1000:03d}/img-{i:06d}.jpg", f"2020-01-{1 + i % 28:02d}")
                for i in range(1, n + 1)
            ],
        )
    for start in range(0, n, 20_000):
        ids = np.arange(start + 1, min(start + 20_000, n) + 1)
        with st.transaction():
            st.put_embeddings(
                model_id, ids, l2_normalize(rng.standard_normal((len(ids), dim)).astype(np.float32))
            )


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench_scroll(app, win: MainWindow, n: int, frames: int) -> list[float]:
    synth = []
    for k in range(64):
        pm = QPixmap(win.thumbs.pixel_size, win.thumbs.pixel_size)
        pm.fill(QColor.fromHsv(k * 5, 160, 200))
        pm.setDevicePixelRatio(win.thumbs.dpr)
        synth.append(pm)
    win.thumbs.pixmap = lambda image_id, _path: synth[image_id % 64]  # synthetic, no decoding
    win.model.set_items([GridItem(i, f"/bench/img-{i:06d}.jpg") for i in range(1, n + 1)])
    win.stack.setCurrentWidget(win.grid)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 1.0:  # the batched layout finishes in the event loop
        app.processEvents()
    bar = win.grid.verticalScrollBar()
    times = []
    rng = np.random.default_rng(1)
    for f in range(frames):
        # Mostly smooth scrolling (a wheel notch ~ 120 px), with some long jumps (dragging the bar).
        target = bar.value() + 120 if f % 10 else int(rng.integers(0, bar.maximum() + 1))
        t0 = time.perf_counter()
        bar.setValue(min(target, bar.maximum()))
        win.grid.viewport().repaint()
        app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench_search(app, win: MainWindow, queries: list[str]) -> list[float]:
    times = []
    for q in queries:
        done = f"“{q}”"
        t0 = time.perf_counter()
        win.search.setText(q)
        win.run_search()  # what the debounce timer fires
        while not win.jobs.label.text().endswith(done):
            app.processEvents()
            time.sleep(0.0005)
            if time.perf_counter() - t0 > 60:
                raise TimeoutError(f"no results for {q!r}; status: {win.jobs.label.text()!r}")
        win.grid.viewport().repaint()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def bench_drop(app, tmp: Path, copies: int) -> tuple[float, float, int]:
    """(ms to the first photos in the grid, ms to the first thumbnail painted, photos in the folder)."""
    import shutil

    from app.gui.grid_model import StateRole
    from tests.builders.real_photos import write_real_photos

    src = tmp / "real-src"
    write_real_photos(src)
    folder = tmp / "Dropped photos"
    for k in range(copies):
        shutil.copytree(src, folder / f"day-{k:02d}")
    n = sum(1 for p in folder.rglob("*") if p.is_file())
    session = Library(tmp / "drop.sqlite", embedder=FakeEmbedder(image_size=64))
    win = MainWindow(session, tmp / "drop-thumbs")
    win.resize(1280, 820)
    win.show()
    for _ in range(20):
        app.processEvents()
    from PySide6.QtCore import QMimeData, QUrl

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    t0 = time.perf_counter()
    win.handle_drop(mime)
    first_items = first_thumb = None
    while first_thumb is None:
        app.processEvents()
        time.sleep(0.001)
        if first_items is None and win.model.items:
            first_items = time.perf_counter()
        if first_items is not None and win.model.data(win.model.index(0), StateRole) == "ready":
            win.grid.viewport().repaint()
            first_thumb = time.perf_counter()
        if time.perf_counter() - t0 > 120:
            raise TimeoutError("no thumbnails after a drop")
    while win.jobs.running:  # let the index job finish before the window goes
        app.processEvents()
        time.sleep(0.005)
    win.close()
    session.close()
    return (first_items - t0) * 1000, (first_thumb - t0) * 1000, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--skip-scroll", action="store_true")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--drop-copies", type=int, default=8)
    args = ap.parse_args()
    app = make_app()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FOVEA_DATA_DIR"] = tmp
        emb = FakeEmbedder(dim=args.dim)
        session = Library(Path(tmp) / "bench.sqlite", embedder=emb)
        t0 = time.perf_counter()
        populate(session, args.n, args.dim, emb.model_id)
        print(f"store: {args.n:,} images x {args.dim}-d written in {time.perf_counter() - t0:.1f} s")
        win = MainWindow(session, Path(tmp) / "thumbs")
        win.show()
        t0 = time.perf_counter()
        items = session.browse("all")
        print(f"browse all: {len(items):,} rows in {(time.perf_counter() - t0) * 1000:.0f} ms (read worker)")

        if args.skip_scroll:
            frames = base = [0.0]
        else:
            # Baseline in the same process: Qt's stock delegate (icon + name), then Fovea's grid delegate.
            from PySide6.QtWidgets import QStyledItemDelegate

            ours = win.grid.itemDelegate()
            stock = QStyledItemDelegate(win.grid)
            win.grid.setItemDelegate(stock)
            base = bench_scroll(app, win, args.n, args.frames)
            win.grid.setItemDelegate(ours)
            frames = bench_scroll(app, win, args.n, args.frames)
        for name, xs in (("stock Qt delegate (baseline)", base), ("Fovea grid delegate", frames)):
            print(
                f"grid scroll, {args.n:,} items, {len(xs)} frames, {name}: p50 {percentile(xs, 50):.1f} ms, "
                f"p95 {percentile(xs, 95):.1f} ms, max {max(xs):.1f} ms (target p95 <= 16 ms)"
            )
        print(
            f"scroll p95 ratio Fovea / stock: {percentile(frames, 95) / max(percentile(base, 95), 1e-9):.2f}"
        )

        warm = bench_search(app, win, ["warm up"])  # first query builds the in-memory index
        queries = [
            "r",
            "re",
            "red",
            "red c",
            "red ci",
            "red cir",
            "red circ",
            "red circl",
            "red circle",
            "a blue star",
            "two green squares",
            "sky -blue",
            '2:"a star" moon',
        ]
        times = bench_search(app, win, queries)
        print(
            f"search-as-you-type at {args.n:,} images, k=200: p50 {percentile(times, 50):.1f} ms, "
            f"p95 {percentile(times, 95):.1f} ms, max {max(times):.1f} ms (target <= 100 ms); "
            f"first query incl. index load {warm[0]:.0f} ms"
        )
        win.close()
        session.close()
        items_ms, thumb_ms, n_drop = bench_drop(app, Path(tmp), args.drop_copies)
        print(
            f"drop a folder of {n_drop} real photos on a new window: first photos in the grid after "
            f"{items_ms:.0f} ms, first thumbnail on screen after {thumb_ms:.0f} ms"
        )
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
