"""Preferences (Cmd+, on macOS): model, backend, tag thresholds, captions, appearance, libraries.

Pulling and converting models run as status-bar jobs in the window; this dialog only starts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.contracts import JobKind, JobProgress
from app.core.model_registry import REGISTRY
from app.core.settings import Settings

if TYPE_CHECKING:
    from app.gui.main_window import MainWindow


def _row(*widgets: QWidget) -> QWidget:
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for i, x in enumerate(widgets):
        lay.addWidget(x, 1 if i == 0 else 0)
    return w


def pull_job(name: str) -> Callable[[Callable[[], bool]], Iterator[JobProgress]]:
    """A status-bar job pulling registry model `name` (download, check, convert, install)."""

    from app.core.model_install import pull_job as core_pull_job

    return lambda _stop: core_pull_job(name)


def convert_job(src: Path) -> Callable[[Callable[[], bool]], Iterator[JobProgress]]:
    """A status-bar job converting a downloaded Hugging Face folder into the models folder."""

    from app.core.model_install import install_job

    return lambda _stop: install_job(src)  # verified against transformers when installed, as the CLI does


class PreferencesDialog(QDialog):
    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.setWindowTitle("Preferences")
        self.setMinimumWidth(560)
        self.win, self.lib = win, win.lib
        self.settings = Settings.load()
        form = QFormLayout()

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItem("demo")
        self.model.addItems([e.name for e in REGISTRY if e.kind == "embedder"])
        self.model.setCurrentText(self.settings.model)
        pick = QPushButton("Folder…")
        pick.clicked.connect(self._pick_model)
        form.addRow("Model", _row(self.model, pick))
        pull = QPushButton("Download and Convert")
        pull.setToolTip("Pull the chosen registry model from Hugging Face (needs a network connection once).")
        pull.clicked.connect(self._pull)
        convert = QPushButton("Convert a Downloaded Checkpoint…")
        convert.clicked.connect(self._convert)
        form.addRow("", _row(pull, convert))

        self.backend = QComboBox()
        self.backend.addItems(["auto", "mlx", "torch"])
        self.backend.setCurrentText(self.settings.backend)
        form.addRow("Backend", self.backend)
        self.min_score = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.min_score.setValue(self.settings.min_score)
        self.min_margin = QDoubleSpinBox(decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05)
        self.min_margin.setValue(self.settings.min_margin)
        form.addRow("Tags: minimum score", self.min_score)
        form.addRow("Tags: minimum margin", self.min_margin)
        self.captions = QCheckBox("Caption photos in the background (needs a caption model)")
        self.captions.setChecked(self.settings.captions)
        form.addRow("Captions", self.captions)
        self.appearance = QComboBox()
        self.appearance.addItems(["system", "light", "dark"])
        self.appearance.setCurrentText(self.settings.appearance)
        form.addRow("Appearance", self.appearance)
        self.cluster = QLineEdit(self.settings.cluster_address)
        self.cluster.setPlaceholderText("empty: index on this computer")
        self.cluster.setToolTip(
            "A Ray cluster (ray://head:10001) that decodes and embeds new photos; the library stays here. "
            "Needs the 'cluster' extra; see docs/CLUSTER.md."
        )
        form.addRow("Cluster (Ray) address", self.cluster)

        self.libraries = QListWidget()
        self.libraries.addItems([str(lib.path) for lib in win.libs])  # as the sidebar last read them
        remove = QPushButton("Remove from Fovea")
        remove.setToolTip("Forget this library and its tags; the photos on disk are not touched.")
        remove.clicked.connect(self._remove_library)
        form.addRow("Libraries", self.libraries)
        form.addRow(
            "", _row(QLabel("<small>Removing a library never deletes or changes photos.</small>"), remove)
        )

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _pick_model(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "A converted model folder")
        if d:
            self.model.setCurrentText(d)

    def _pull(self) -> None:
        name = self.model.currentText()
        if name in {e.name for e in REGISTRY}:
            self.win.jobs.start(pull_job(name), JobKind.PULL, f"Pulling {name}")
        else:
            self.win.notice(f"{name!r} is not a registry model; pick one of the list to download it.")

    def _convert(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "A downloaded Hugging Face CLIP or SigLIP folder")
        if d:
            self.win.jobs.start(convert_job(Path(d)), JobKind.CONVERT)

    def _remove_library(self) -> None:
        item = self.libraries.currentItem()
        if item is None:
            return
        path = item.text()
        self.libraries.takeItem(self.libraries.row(item))
        self.win.call(
            self.win.writes,
            lambda: self.lib.remove_root(path),
            lambda _r: (self.win.refresh_sidebar(), self.win.show_view("all")),
            "remove library",
        )

    def _save(self) -> None:
        from app.gui.app import apply_appearance

        s = self.settings
        model_changed = (s.model, s.backend) != (self.model.currentText(), self.backend.currentText())
        s.model, s.backend = self.model.currentText(), self.backend.currentText()
        s.min_score, s.min_margin = self.min_score.value(), self.min_margin.value()
        s.captions, s.appearance = self.captions.isChecked(), self.appearance.currentText()
        s.cluster_address = self.cluster.text().strip()
        s.save()
        apply_appearance(s.appearance)
        if s.captions and not self.win.jobs.running:
            self.win.caption_all()  # turned on (or left on): catch up now; later index jobs chain to it
        if model_changed:
            self.lib.set_model(s.model, s.backend)
            self.win.load_model()
            self.win.reindex_all()  # embeddings are per model: the new one indexes what it has not seen
        self.accept()
