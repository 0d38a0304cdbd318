"""What the reader shows with no document open: Open, the recent documents, and "drop a document here"."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from .theme import secondary_text


class StartScreen(QWidget):
    """``sig_open()``: the Open button; ``sig_open_path(path)``: a recent document was chosen."""

    sig_open = Signal()
    sig_open_path = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        title = QLabel("Open a document to start reading and asking questions")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        self.open_button = QPushButton("Open a document…  (Ctrl+O)")
        self.open_button.clicked.connect(self.sig_open)
        drop = QLabel("or drop a file anywhere on this window: PDF, EPUB, XPS, FB2, MOBI, CBZ, text or a scanned "
                      "image (scans are read with OCR)")
        drop.setAlignment(Qt.AlignmentFlag.AlignCenter)
        drop.setWordWrap(True)  # a long line would widen the reader and squeeze the chat
        secondary_text(drop)
        self.recent_title = QLabel("Recent documents")
        self.recent = QListWidget()
        self.recent.setMaximumWidth(520)
        self.recent.itemActivated.connect(self._chosen)
        self.recent.itemClicked.connect(self._chosen)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addSpacing(12)
        layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(drop)
        layout.addSpacing(18)
        layout.addWidget(self.recent_title, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.recent, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.set_recent([])

    def set_recent(self, rows: list[dict]) -> None:
        """Library rows (title, path), newest first; files that are gone are listed greyed out."""
        self.recent.clear()
        for row in rows:
            item = QListWidgetItem(row.get("title") or Path(row["path"]).stem)
            item.setToolTip(row["path"])
            item.setData(Qt.ItemDataRole.UserRole, row["path"])
            if not Path(row["path"]).is_file():
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setToolTip(f"{row['path']} (the file is no longer there)")
            self.recent.addItem(item)
        self.recent_title.setVisible(bool(rows))
        self.recent.setVisible(bool(rows))

    def _chosen(self, item: QListWidgetItem) -> None:
        if item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.sig_open_path.emit(item.data(Qt.ItemDataRole.UserRole))
