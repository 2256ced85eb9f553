"""A small progress ring: an arc that fills clockwise from 12 o'clock, or spins while the total is unknown.

It takes QProgressBar's `setRange`/`setValue`/`value`/`maximum`, with `setRange(0, 0)` meaning busy, so
a job's progress signal drives it the same way.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

SPIN_MS = 50  # busy arc step: 20 frames a second is smooth enough for a hint and cheap on the GUI thread
SPIN_STEP = 30  # degrees per frame


class ProgressRing(QWidget):
    def __init__(self, side: int = 18, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(QSize(side, side))
        self._min, self._max, self._value = 0, 100, 0
        self._angle = 0  # start of the busy arc, degrees clockwise from 12 o'clock
        self._timer = QTimer(self)
        self._timer.setInterval(SPIN_MS)
        self._timer.timeout.connect(self._spin)

    def setRange(self, minimum: int, maximum: int) -> None:  # noqa: N802  (QProgressBar's name)
        self._min, self._max = minimum, max(minimum, maximum)
        self._value = min(max(self._value, self._min), self._max)
        self._sync_timer()
        self.update()

    def setValue(self, value: int) -> None:  # noqa: N802
        self._value = min(max(value, self._min), self._max)
        self.update()

    def value(self) -> int:
        return self._value

    def maximum(self) -> int:
        return self._max

    def busy(self) -> bool:
        return self._max == self._min

    def fraction(self) -> float:
        """How much of the ring is filled, 0..1 (0 while busy)."""
        return 0.0 if self.busy() else (self._value - self._min) / (self._max - self._min)

    def setVisible(self, visible: bool) -> None:  # noqa: N802  (the timer runs only while it is seen)
        super().setVisible(visible)
        self._sync_timer()

    def _sync_timer(self) -> None:
        if self.busy() and not self.isHidden():
            self._timer.start()
        else:
            self._timer.stop()

    def _spin(self) -> None:
        self._angle = (self._angle + SPIN_STEP) % 360
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        pen_w = max(2.0, self.width() / 7)
        rect = QRectF(self.rect()).adjusted(pen_w / 2, pen_w / 2, -pen_w / 2, -pen_w / 2)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = QColor(self.palette().mid().color())
        track.setAlpha(90)
        p.setPen(QPen(track, pen_w))
        p.drawEllipse(rect)
        pen = QPen(self.palette().highlight().color(), pen_w)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        # Qt angles are 1/16 degree, counter-clockwise from 3 o'clock: 90 deg is 12 o'clock, negative spans
        # run clockwise.
        if self.busy():
            p.drawArc(rect, int((90 - self._angle) * 16), -90 * 16)
        elif self.fraction() > 0:
            p.drawArc(rect, 90 * 16, -round(360 * 16 * self.fraction()))
        p.end()
