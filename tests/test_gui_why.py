"""The "Why?" overlay: maps computed off the GUI thread, cancelled and dropped when the selection changes, cached."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from app.core.api import Library  # noqa: E402
from app.core.contracts import TagInfo  # noqa: E402
from app.core.explain import AUTO_BATCH  # noqa: E402
from app.gui.detail_panel import DetailPanel  # noqa: E402
from app.gui.progress_ring import ProgressRing  # noqa: E402
from app.gui.why_overlay import WhyOverlay, why_query  # noqa: E402
from tests.builders.fake_embedder import FakeEmbedder  # noqa: E402

WAIT_MS = 60_000


class GatedEmbedder(FakeEmbedder):
    """A fake with an 8-pixel patch grid whose image embedding waits for `gate` once `hold` is set,
    so a test can change the selection while a map is half done."""

    patch_size = 8

    def __init__(self) -> None:
        super().__init__(image_size=32)
        self.hold = threading.Event()
        self.gate = threading.Event()
        self.waiting = threading.Event()
        self.copies = 0  # images embedded, however explain batches them

    def embed_pixels(self, pixels):
        if self.hold.is_set() and len(pixels) > 1:
            self.waiting.set()
            assert self.gate.wait(30), "the test never opened the gate"
        self.copies += len(pixels)
        return super().embed_pixels(pixels)


@pytest.fixture
def why(qtbot, tmp_path):
    emb = GatedEmbedder()
    lib = Library(tmp_path / "lib.sqlite", embedder=emb)
    lib.embedder()  # loaded, as after the window's model-load call
    photos = []
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        p = tmp_path / f"photo{i}.png"
        arr = np.full((64, 64, 3), 128, np.uint8)
        arr[8:40, 16:48] = colour
        Image.fromarray(arr).save(p)
        photos.append(str(p))
    panel = DetailPanel()
    qtbot.addWidget(panel)
    overlay = WhyOverlay(lib, parent=panel)
    panel.add_row(overlay.row)
    shown = []
    overlay.pixmap_ready.connect(lambda pm: shown.append(pm))
    overlay.pixmap_ready.connect(panel.set_overlay)
    panel.show()
    yield overlay, emb, photos, shown
    emb.gate.set()
    overlay.cancel()
    overlay.pool.waitForDone(10_000)
    lib.close()


def test_a_selection_change_cancels_the_map_and_drops_its_result(qtbot, why):
    overlay, emb, (a, b), shown = why
    assert not overlay.button.isEnabled()  # nothing to explain before a query
    overlay.set_target(a, "a red square")
    assert overlay.button.isEnabled()
    emb.hold.set()
    overlay.button.setChecked(True)
    assert emb.waiting.wait(30) and overlay.progress.isVisible()
    job_a = overlay.job
    overlay.set_target(b, "a red square")  # the user moves on while A's map is half done
    assert job_a.cancelled and overlay.job is not job_a
    emb.hold.clear()
    emb.gate.set()
    qtbot.waitUntil(lambda: overlay.job is None and shown and shown[-1] is not None, timeout=WAIT_MS)
    assert set(overlay.cache) == {(b, "a red square", "fake-clip")}  # A stopped early: no map for it
    both = emb.copies
    overlay.set_target(a, "a red square")
    qtbot.waitUntil(lambda: overlay.job is None and len(overlay.cache) == 2, timeout=WAIT_MS)
    # The cancelled job embedded the photo and the trial batch in flight, then stopped; a whole map
    # embeds more.
    full = emb.copies - both
    assert both - full == 1 + AUTO_BATCH and full > 1 + AUTO_BATCH
    assert not overlay.progress.isVisible()


def test_maps_are_cached_per_image_query_and_model(qtbot, why):
    overlay, emb, (a, _b), shown = why
    overlay.set_target(a, "a red square")
    overlay.button.setChecked(True)
    qtbot.waitUntil(lambda: overlay.job is None and shown and shown[-1] is not None, timeout=WAIT_MS)
    copies = emb.copies
    overlay.button.setChecked(False)
    assert shown[-1] is None  # toggled off: the plain photo again
    overlay.button.setChecked(True)
    assert shown[-1] is not None and overlay.job is None and emb.copies == copies  # from the cache
    assert overlay.current_image() is not None  # what the Space preview shows
    overlay.set_target(a, "a blue square")  # another query is another map
    assert overlay.job is not None
    qtbot.waitUntil(lambda: overlay.job is None, timeout=WAIT_MS)
    assert len(overlay.cache) == 2


def test_why_explains_the_search_or_the_tag_under_review():
    tags = [TagInfo("dog", 0.9, "auto"), TagInfo("cat", 0.4, "review"), TagInfo("fox", 0.3, "review")]
    assert why_query("  red car ", "all", tags) == "red car"
    assert why_query("", "review", tags) == "a photo of cat."
    assert why_query("", "all", tags) is None
    assert why_query("", "review", tags[:1]) is None


def test_the_progress_ring_fills_clockwise_from_twelve_and_spins_while_busy(qtbot):
    ring = ProgressRing(side=40)
    qtbot.addWidget(ring)
    ring.setRange(0, 0)
    ring.show()
    assert ring.busy() and ring._timer.isActive()  # the total is unknown: a spinning arc
    ring.setVisible(False)
    assert not ring._timer.isActive()  # no repaints for a hidden ring
    ring.setVisible(True)
    ring.setRange(0, 80)
    ring.setValue(20)
    assert not ring._timer.isActive() and ring.fraction() == pytest.approx(0.25)
    img = ring.grab().toImage()
    hi = ring.palette().highlight().color()

    def lit(x: int, y: int) -> bool:  # the highlight arc is drawn at (x, y) of the 40x40 ring
        c = img.pixelColor(round(x * img.width() / 40), round(y * img.height() / 40))
        return abs(c.red() - hi.red()) + abs(c.green() - hi.green()) + abs(c.blue() - hi.blue()) < 60

    # A quarter done: the arc runs from 12 o'clock to 3 o'clock, through the upper right only.
    assert lit(32, 8) and not lit(8, 8) and not lit(8, 32) and not lit(32, 32)
    ring.setValue(200)  # clamped to the range
    assert ring.value() == 80
    img = ring.grab().toImage()
    assert all(lit(x, y) for x, y in [(32, 8), (8, 8), (8, 32), (32, 32)])
    if os.environ.get("FOVEA_RING_PNG"):  # look at it: FOVEA_RING_PNG=/tmp/ring.png pytest -k ring
        ring.setValue(50)
        ring.grab().save(os.environ["FOVEA_RING_PNG"])
