"""Help ▸ How Searching Works: a short page on query terms, image drops, weak matches and tags."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

SEARCH_HELP = """
<h2>How searching works</h2>
<p>Fovea compares what you type with what is <i>in</i> each photo, using a model that runs on this
computer. Type words that describe the picture: <b>a dog on a beach</b>, <b>red circle</b>,
<b>receipts</b>. Results update as you type.</p>
<h3>Terms</h3>
<table cellpadding="4">
<tr><td><code>red circle</code></td><td>plain words form one description</td></tr>
<tr><td><code>+sunset</code></td><td>adds another description, blended with the rest</td></tr>
<tr><td><code>-blue</code></td><td>steers away from photos that look like this</td></tr>
<tr><td><code>2:"a star"</code></td><td>weights a term: here twice as much as the others</td></tr>
<tr><td><code>"a red circle"</code></td><td>quotes keep words together as one term</td></tr>
</table>
<h3>Photos as queries</h3>
<p>Drop a photo on the search field or the grid (or choose <b>Find Similar</b>) to see the photos that
look most like it. A photo path typed as a term works too.</p>
<h3>Strong and weaker matches</h3>
<p>Matches the model is confident about come first. Below them, the <b>weaker matches</b> tile opens the
rest: photos that are only the closest Fovea could find. When nothing matches well, Fovea says
<b>No strong matches</b> (with the reason when it knows one, such as words the model does not know)
instead of pretending. The score of each photo shows on hover and in the detail panel.</p>
<h3>Tags and captions</h3>
<p><b>Library ▸ Tag Photos</b> names what is in each photo. Tags it is sure of are applied; the ones it is
unsure of wait in the <b>Review queue</b> for your ✓ or ✗. Tags and captions (when a caption model is
installed) are searched too, together with the pictures.</p>
"""


def docs_url() -> QUrl:
    """The README that ships beside the code (an invalid URL when it is not there, e.g. a trimmed build)."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    return QUrl.fromLocalFile(str(readme)) if readme.is_file() else QUrl()


class SearchHelp(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("How Searching Works")
        self.resize(620, 640)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        more = docs_url()
        link = (
            f'<p>More in the <a href="{more.toString()}">Fovea documentation</a>.</p>'
            if more.isValid()
            else ""
        )
        self.text.setHtml(SEARCH_HELP + link)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(buttons)
