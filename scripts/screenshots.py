"""Render the main window's states into docs/screenshots/ (run under Xvfb, offline, in a temporary data dir).

    xvfb-run -a -s "-screen 0 1440x900x24" python scripts/screenshots.py [--out docs/screenshots]

Uses the demo CLIP model when resources/models/fovea-demo-clip exists, else the tests' fake embedder
(whose "red circle" query is mapped onto a red-circle image so the results screenshot is meaningful).
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

QUERY = "red circle"
WEAK_QUERY = "a purple elephant at the beach"


def fake_embedder(target: Path):
    from app.core.decode import open_image
    from tests.builders.fake_embedder import FakeEmbedder

    class Shots(FakeEmbedder):
        def embed_texts(self, texts):
            out = super().embed_texts(texts)
            for i, t in enumerate(texts):
                if t in (QUERY, WEAK_QUERY):  # WEAK_QUERY points away from the photos: only weak hits
                    out[i] = self.embed_images([open_image(target).image])[0] * (1 if t == QUERY else -1)
            return out

    return Shots(image_size=48)


class Gated:
    """Any embedder, held after 64 images until `gate` is set: the 'indexing' screenshot catches the job mid-way."""

    def __init__(self, inner) -> None:
        self.inner, self.gate, self.seen = inner, threading.Event(), 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed_pixels(self, pixels):
        if self.seen >= 64:
            self.gate.wait(60)
        self.seen += len(pixels)
        return self.inner.embed_pixels(pixels)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fovea-shots-"))
    os.environ["FOVEA_DATA_DIR"] = str(tmp / "data")

    from app.core.api import Library
    from app.core.paths import demo_model_dir
    from app.core.tag_store import replace_machine_tags
    from app.gui.app import apply_appearance, make_app
    from app.gui.main_window import MainWindow
    from training.scenes import captions, make_scenes, render

    photos = tmp / "Holiday photos"
    photos.mkdir()
    scenes = make_scenes(2024, 120)
    for i, sc in enumerate(scenes):
        render(sc, 256).save(photos / f"IMG_{1000 + i}.jpg", quality=92)
    (photos / "IMG_0999.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated by a bad card reader")
    (photos / "notes.heic").write_bytes(b"not really an image")
    red = next(i for i, sc in enumerate(scenes) if sc.contains("red", "circle"))

    app = make_app()
    apply_appearance("light")
    if (demo_model_dir() / "config.json").is_file():
        import mlx_models  # noqa: F401  (OpenBLAS before mlx)

        from app.core.backends import open_embedder

        emb, fake = open_embedder(demo_model_dir(), "mlx"), None
    else:
        emb = fake = fake_embedder(photos / f"IMG_{1000 + red}.jpg")
    emb = Gated(emb)
    session = Library(tmp / "library.sqlite", embedder=emb)
    win = MainWindow(session, tmp / "thumbs")
    win.resize(1360, 840)
    win.show()

    def settle(seconds: float = 0.6, until=None, timeout: float = 120.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds or (until is not None and not until()):
            app.processEvents()
            time.sleep(0.005)
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(
                    f"the window did not reach the expected state ({win.jobs.label.text()!r}, "
                    f"{len(win.model.items)} items, job running: {win.jobs.running})"
                )

    def shot(name: str) -> None:
        settle(0.8)
        path = args.out / f"{name}.png"
        win.grab().save(str(path))
        print(path)

    settle(1.0)
    shot("01-empty-first-run")

    win.add_folders([str(photos)])
    settle(
        0.5, until=lambda: win.jobs.running and win.jobs.progress.value() >= 64 and len(win.model.items) >= 64
    )
    settle(0.3)
    win.grab().save(str(args.out / "02-indexing.png"))
    print(args.out / "02-indexing.png")
    emb.gate.set()
    settle(0.5, until=lambda: not win.jobs.running and len(win.model.items) == 120)

    win.search.setText(QUERY)
    win.run_search()
    settle(0.5, until=lambda: win.jobs.label.text().endswith(f"“{QUERY}”"))
    shot("03-search-results")

    if fake is None:
        # The demo model's text-image cosines sit near 0.8 for any query, above CLIP's documented 0.20
        # weak line; raise the line here so the screenshot can show the state.
        session.engine()._weak_override = {"text": 0.95, "image": 0.95}
    win.search.setText(WEAK_QUERY)
    win.run_search()
    settle(0.3, until=lambda: win.jobs.label.text().endswith(f"“{WEAK_QUERY}”"))
    shot("04-no-strong-match")

    # Tags and a caption, as the tagger and captioner would leave them.
    ids = [it.image_id for it in win.model.items[:6]]
    rows = []
    for n, image_id in enumerate(ids):
        sc = scenes[int(Path(session.image_details(image_id).path).stem[4:]) - 1000]
        for k, shape in enumerate(sc.shapes[:2]):
            status = "auto" if (n + k) % 3 else "review"
            rows.append((image_id, f"{shape.colour} {shape.kind}", 0.81 - 0.17 * k - 0.01 * n, status))
        rows.append((image_id, "outdoors", 0.41, "review"))
    replace_machine_tags(session.store, ids, rows, emb.model_id)
    with session.store.transaction() as c:
        for image_id in ids:
            sc = scenes[int(Path(session.image_details(image_id).path).stem[4:]) - 1000]
            c.execute(
                "INSERT OR REPLACE INTO captions (image_id, model_id, text, created_at) VALUES (?, 'demo', ?, 0)",
                (image_id, captions(sc)[0]),
            )
    session.engine()._weak_override = None
    win.search.clear()
    win.show_view("all")
    settle(0.5, until=lambda: len(win.model.items) == 120)
    row = next(r for r, it in enumerate(win.model.items) if it.image_id == ids[0])
    win.grid.setCurrentIndex(win.model.index(row))
    win.refresh_sidebar()
    shot("05-detail-with-tags")

    win.sidebar.select_view("review")
    settle(0.5, until=lambda: 0 < len(win.model.items) <= 6)
    shot("06-review-queue")

    win.sidebar.select_view("errors")
    shot("07-errors")

    apply_appearance("dark")
    win.sidebar.select_view("all")
    win.search.setText(QUERY)
    win.run_search()
    settle(0.5, until=lambda: win.jobs.label.text().endswith(f"“{QUERY}”"))
    shot("08-dark-search-results")
    win.close()
    session.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
