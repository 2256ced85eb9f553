"""Render the window's states into docs/screenshots/ (run under Xvfb, offline, in a temporary data dir).

    xvfb-run -a -s "-screen 0 1440x900x24" python scripts/screenshots.py [--out docs/screenshots]

Two libraries:
- real photographs (scikit-image's and matplotlib's bundled samples, plus an exact copy, a resized copy, a
  panorama, a tall crop, a 14x25 GIF and broken files: tests/builders/real_photos.py). No real CLIP
  checkpoint can be downloaded here, so this library is searched with the tests' stand-in embedder, whose
  query "a cat" is mapped onto the cat photo: the grid, sections, duplicates and errors are real, the
  ranking is the stand-in's.
- the demo library (generated scenes) with the bundled demo CLIP model, indexed and tagged by the same
  jobs as `fovea demo` (tags, review queue and search are the model's own).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAT = "a cat"
NOTHING = "a purple elephant at the beach"


def stand_in_embedder(cat: Path):
    from app.core.decode import open_image
    from tests.builders.fake_embedder import FakeEmbedder

    class Shots(FakeEmbedder):
        def embed_texts(self, texts):
            out = super().embed_texts(texts)
            for i, t in enumerate(texts):
                if t in (CAT, NOTHING):  # NOTHING points away from every photo: only weak hits
                    out[i] = self.embed_images([open_image(cat).image])[0] * (1 if t == CAT else -1)
            return out

    return Shots(image_size=48)


class Gated:
    """Any embedder, held after `after` images until `gate` is set: the 'indexing' shot catches the job."""

    def __init__(self, inner, after: int) -> None:
        self.inner, self.after, self.gate, self.seen = inner, after, threading.Event(), 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed_pixels(self, pixels):
        if self.seen >= self.after:
            self.gate.wait(60)
        self.seen += len(pixels)
        return self.inner.embed_pixels(pixels)


class Shooter:
    def __init__(self, app, out: Path) -> None:
        self.app, self.out, self.win = app, out, None

    def settle(self, seconds: float = 0.6, until=None, timeout: float = 180.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds or (until is not None and not until()):
            self.app.processEvents()
            time.sleep(0.005)
            if time.monotonic() - t0 > timeout:
                w = self.win
                raise TimeoutError(
                    f"the window did not reach the expected state ({w.jobs.label.text()!r}, "
                    f"{len(w.model.items)} items, job running: {w.jobs.running})"
                )

    def shot(self, name: str, widget=None, settle: float = 0.8) -> None:
        self.settle(settle)
        path = self.out / f"{name}.png"
        (widget or self.win).grab().save(str(path))
        print(path)


def open_window(shooter: Shooter, tmp: Path, name: str, embedder):
    from app.core.api import Library
    from app.gui.main_window import MainWindow

    session = Library(tmp / f"{name}.sqlite", embedder=embedder)
    win = MainWindow(session, tmp / "thumbs")
    win.resize(1360, 840)
    win.show()
    shooter.win = win
    return win, session


def real_photos(s: Shooter, tmp: Path, dark: bool) -> None:
    from app.gui.app import apply_appearance
    from tests.builders.real_photos import write_real_photos

    apply_appearance("dark" if dark else "light")
    photos = tmp / ("Photos dark" if dark else "Photos")
    named = write_real_photos(photos)
    (photos / "IMG_0999.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated by a bad card reader")
    emb = stand_in_embedder(named["chelsea"])
    win, session = open_window(s, tmp, "real-dark" if dark else "real", emb)
    n = sum(1 for p in photos.iterdir()) - 2  # all but the two broken files
    if not dark:
        s.settle(1.0)
        s.shot("01-first-run")
    win.add_folders([str(photos)])
    s.settle(0.5, until=lambda: not win.jobs.running and len(win.model.items) == n)
    win.grid.set_cell(132)  # the whole library on one screen, panorama and 14x25 GIF included
    row = next(r for r, it in enumerate(win.model.items) if Path(it.path).name == "astronaut.jpg")
    win.grid.setCurrentIndex(win.model.index(row))
    s.shot("16-dark-grid" if dark else "03-grid-real-photos", settle=1.5)
    win.grid.set_cell(168)
    if dark:
        win.sidebar.select_view("duplicates")
        s.settle(0.5, until=lambda: bool(win.dups_page.groups))
        s.shot("17-dark-duplicates", settle=1.5)
        win.close()
        session.close()
        return

    session.engine()._weak_override = {"text": 0.9, "image": 0.9}  # the stand-in's cosines: see the docstring
    win.search.setText(CAT)
    win.run_search()
    s.settle(0.3, until=lambda: win.jobs.label.text().endswith(f"“{CAT}”"))
    s.shot("04-search-strong-then-weaker", settle=1.2)
    win.toggle_weak()
    s.shot("05-weaker-matches-open", settle=1.2)
    win.search.setText(NOTHING)
    win.run_search()
    s.settle(0.3, until=lambda: win.jobs.label.text().endswith(f"“{NOTHING}”"))
    s.shot("06-no-strong-match", settle=1.2)
    session.engine()._weak_override = None
    win.clear_search()

    win.sidebar.select_view("duplicates")
    s.settle(0.5, until=lambda: bool(win.dups_page.groups))
    exact = next(g for g in win.dups_page.groups if g.kind == "exact")
    s.settle(0.5, until=lambda: exact.image_ids[0] in win.dups_page.cells)
    keep = next(i for i, p in zip(exact.image_ids, exact.paths, strict=True) if p.name == "chelsea.jpg")
    win.dups_page.cells[keep].keep.click()
    s.shot("07-duplicates", settle=1.5)

    win.sidebar.select_view("errors")
    s.shot("08-errors")

    os.environ["HF_HUB_OFFLINE"] = "1"  # this machine is offline anyway; say so at once
    from app.core.contracts import JobKind
    from app.gui.preferences import pull_job

    win.sidebar.select_view("all")
    win.jobs.start(pull_job("clip-vit-b32"), JobKind.PULL, "Pulling clip-vit-b32")
    s.settle(0.3, until=lambda: "Pulling clip-vit-b32" in win.notices.bars)
    s.shot("09-download-failed-offline", settle=1.0)
    win.notices.dismiss("Pulling clip-vit-b32")

    win.set_fit(True)
    win.grid.set_cell(260)
    s.shot("10-whole-photos-zoomed", settle=1.5)
    win.set_fit(False)
    win.grid.set_cell(168)

    from app.gui.help import SearchHelp

    help_page = SearchHelp(win)
    help_page.show()
    s.shot("11-how-searching-works", widget=help_page)
    help_page.close()

    from app.core.library_file import diagnose
    from app.core.store import Store, StoreError
    from app.gui.library_problem import LibraryProblemDialog

    broken = tmp / "Fovea library.sqlite"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00\xff" * 4000)
    try:
        Store(broken)
    except StoreError as e:
        dlg = LibraryProblemDialog(diagnose(broken, e))
        dlg.show()
        s.shot("12-library-cannot-be-opened", widget=dlg)
        dlg.close()
    win.close()
    session.close()


def demo_library(s: Shooter, tmp: Path, dark: bool) -> None:
    import mlx_models  # noqa: F401  (OpenBLAS before mlx)

    from app.core.backends import open_embedder
    from app.core.paths import demo_model_dir
    from app.gui.app import apply_appearance

    apply_appearance("dark" if dark else "light")
    emb = Gated(open_embedder(demo_model_dir(), "mlx"), after=10**9 if dark else 64)
    win, session = open_window(s, tmp, "demo-dark" if dark else "demo", emb)
    win.open_demo()  # write, index and tag with the demo vocabulary: the same job as `fovea demo`
    if not dark:
        s.settle(0.3, until=lambda: win.jobs.running and len(win.model.items) >= 64)
        s.shot("02-indexing", settle=1.0)
    emb.gate.set()
    s.settle(1.0, until=lambda: not win.jobs.running and win.jobs.job_label.text().endswith("finished"))
    win.search.setText("red circle")
    win.run_search()
    s.settle(0.3, until=lambda: win.jobs.label.text().endswith("“red circle”"))
    s.shot("18-dark-demo-search" if dark else "13-demo-search", settle=1.2)
    if dark:
        win.close()
        session.close()
        return
    win.clear_search()
    win.sidebar.select_view("tags")
    s.shot("14-demo-tags")
    win.sidebar.select_view("review")
    s.settle(0.3, until=lambda: len(win.model.items) > 0)
    s.shot("15-demo-review-queue", settle=1.2)
    win.close()
    session.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fovea-shots-"))
    os.environ["FOVEA_DATA_DIR"] = str(tmp / "data")

    from app.core.paths import demo_model_dir
    from app.gui.app import make_app

    s = Shooter(make_app(), args.out)
    real_photos(s, tmp, dark=False)
    real_photos(s, tmp, dark=True)
    if (demo_model_dir() / "config.json").is_file():
        demo_library(s, tmp, dark=False)
        demo_library(s, tmp, dark=True)
    else:
        print("no demo model: the demo-library shots are skipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
