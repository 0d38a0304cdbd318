"""The library panel: the library's documents with their length and state, add, remove, drag and drop.

A view only: it shows what ``show_documents`` and ``show_reading`` give it and reports what the user did.
Signals:
- ``sig_add(paths)``: files or folders to add (from the buttons or dropped on the panel).
- ``sig_remove(item_id)``: remove this document from the library.
- ``sig_open(path)``: open this document in the reader (double-click).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.ingest.formats import SUFFIXES

from .settings import storage_words
from .theme import secondary_text, themed

COLUMNS = ("Document", "Pages", "Length", "State")
TITLE, PAGES, LENGTH, STATE = range(4)
ID_ROLE = Qt.ItemDataRole.UserRole
FAILED_COLORS = ("#b91c1c", "#f87171")  # "Couldn't read" on the light and on the dark theme (both over 4.5:1)
STATE_WORDS = {"queued": "Waiting", "reading": "Reading", "ready": "Ready", "failed": "Couldn't read"}
STATE_TIPS = {"queued": "Waiting to be read (one document at a time, in the background)",
              "reading": "Being read now; questions to the whole library use it once it is ready",
              "ready": "Read: questions to the whole library can answer from it"}
EMPTY_HINT = "Add files or a folder (or drop them here): DocFocus reads them in the background, then answers " \
             "questions across all of them."


def length_text(tokens) -> str:
    """The document's length in plain words (the model's tokens go to the tooltip)."""
    if not tokens:
        return ""
    if tokens < 1000:
        return str(int(tokens))
    return f"{tokens / 1000:.1f}k" if tokens < 10_000 else f"{tokens / 1000:.0f}k"


def file_filter() -> str:
    patterns = " ".join(f"*{suffix}" for suffix in sorted(SUFFIXES))
    return f"Documents ({patterns});;All files (*)"


class LibraryPanel(QWidget):
    sig_add = Signal(object)
    sig_remove = Signal(int)
    sig_open = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.items: dict[int, QTreeWidgetItem] = {}
        self.documents: dict[int, dict] = {}
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 4, 2, 2)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.headerItem().setToolTip(LENGTH, "How much text the model reads, in tokens (pieces of words; "
                                                  "k = thousand)")
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(TITLE, QHeaderView.ResizeMode.Stretch)
        for column in (PAGES, LENGTH, STATE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _column: self.sig_open.emit(
            self.documents[item.data(TITLE, ID_ROLE)]["path"]))
        self.hint = QLabel(EMPTY_HINT)
        self.hint.setWordWrap(True)
        secondary_text(self.hint)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.setToolTip("Add documents to the library")
        self.add_files_button.clicked.connect(self.choose_files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Add every document in a folder and its subfolders")
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected document from the library (the file stays where it is)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.remove_button.setEnabled(False)
        for button in (self.add_files_button, self.add_folder_button, self.remove_button):
            buttons.addWidget(button)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.detail)
        self.storage = QLabel("")
        self.storage.setWordWrap(True)
        secondary_text(self.storage)
        layout.addWidget(self.storage)
        layout.addLayout(buttons)
        self.show_documents([])

    # --- what the user does ----------------------------------------------------------------------
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add documents to the library", str(Path.home()),
                                                file_filter())
        if paths:
            self.sig_add.emit(paths)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Add a folder to the library", str(Path.home()))
        if path:
            self.sig_add.emit([path])

    def selected_id(self) -> int | None:
        items = self.tree.selectedItems()
        return int(items[0].data(TITLE, ID_ROLE)) if items else None

    def remove_selected(self) -> None:
        item_id = self.selected_id()
        if item_id is not None:
            self.sig_remove.emit(item_id)

    def dragEnterEvent(self, event) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = dropped_paths(event.mimeData())
        if paths:
            self.sig_add.emit(paths)
            event.acceptProposedAction()

    # --- what the worker reports -------------------------------------------------------------------
    def show_documents(self, documents: list[dict]) -> None:
        """The library as the engine lists it (kept in place: the selection and scrolling stay)."""
        self.documents = {int(d["id"]): d for d in documents}
        for item_id in [i for i in self.items if i not in self.documents]:
            item = self.items.pop(item_id)
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        for item_id, document in self.documents.items():
            item = self.items.get(item_id)
            if item is None:
                item = self.items[item_id] = QTreeWidgetItem()
                item.setData(TITLE, ID_ROLE, item_id)
                self.tree.addTopLevelItem(item)
            self._fill(item, document)
        self.hint.setVisible(not documents)
        self._show_summary()
        self._selection_changed()

    def follow_theme(self) -> None:
        """The theme changed: the failed state's red is the theme's."""
        for item_id, document in self.documents.items():
            self._fill(self.items[item_id], document)

    def show_reading(self, item_id: int, done: int, total: int) -> None:
        document = self.documents.get(item_id)
        if document is not None:
            document.update(state="reading", done=done, total=total)
            self._fill(self.items[item_id], document)

    def state_of(self, item_id: int) -> str:
        """The state word shown for a document (for tests and scripts)."""
        return self.items[item_id].text(STATE)

    def _fill(self, item: QTreeWidgetItem, document: dict) -> None:
        state = document.get("state") or "queued"
        title = document.get("title") or Path(document["path"]).stem
        item.setText(TITLE, title)
        item.setToolTip(TITLE, document["path"])
        item.setText(PAGES, str(document["pages"]) if document.get("pages") else "")
        item.setTextAlignment(PAGES, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setText(LENGTH, length_text(document.get("tokens")))
        item.setTextAlignment(LENGTH, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(LENGTH, f"{document['tokens']:,} tokens" if document.get("tokens") else "")
        done, total = int(document.get("done") or 0), int(document.get("total") or 0)
        percent = int(100 * done / total) if state == "reading" and total else 0
        word = STATE_WORDS.get(state, state)
        item.setText(STATE, f"{word} {percent}%" if state == "reading" else word)
        item.setToolTip(STATE, document.get("reason") or STATE_TIPS.get(state, "")
                        + (f" ({done:,} of {total:,} tokens)" if state == "reading" and total else ""))
        failed = QBrush(QColor(themed(*FAILED_COLORS)))
        item.setForeground(STATE, failed if state == "failed" else QBrush())
        bar = self.tree.itemWidget(item, STATE)
        if state == "reading":
            if bar is None:
                bar = QProgressBar()
                bar.setRange(0, 100)
                bar.setFormat("Reading %p%")
                bar.setMaximumHeight(self.tree.fontMetrics().height() + 4)
                self.tree.setItemWidget(item, STATE, bar)
            bar.setValue(percent)
            bar.setToolTip(item.toolTip(STATE))
        elif bar is not None:
            self.tree.removeItemWidget(item, STATE)

    def show_storage(self, figures: dict) -> None:
        """The space stored readings take and their cap (engine storage figures)."""
        self.storage.setText(storage_words(figures)[0])

    def _show_summary(self) -> None:
        states = [d.get("state") for d in self.documents.values()]
        if not states:
            self.summary.setText("The library is empty.")
            return
        parts = [f"{len(states)} document{'s' if len(states) != 1 else ''}", f"{states.count('ready')} ready"]
        waiting = states.count("queued") + states.count("reading")
        if waiting:
            parts.append(f"{waiting} to read")
        if states.count("failed"):
            parts.append(f"{states.count('failed')} couldn't be read")
        self.summary.setText(" · ".join(parts))

    def _selection_changed(self) -> None:
        item_id = self.selected_id()
        self.remove_button.setEnabled(item_id is not None)
        document = self.documents.get(item_id) if item_id is not None else None
        if document is None:
            self.detail.setText("")
            self.detail.hide()
            return
        text = document["path"]
        if document.get("state") == "failed" and document.get("reason"):
            text += f"\nCouldn't read it: {document['reason']}"
        self.detail.setText(text)
        self.detail.show()


def dropped_paths(mime) -> list[str]:
    """Local files and folders of a drop (any kind: the engine skips what it cannot read in a folder)."""
    if not mime.hasUrls():
        return []
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and Path(url.toLocalFile()).exists()]
