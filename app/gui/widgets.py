"""Small widgets of the main window: banners, the find bar, the relevance legend, the side panel."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QLinearGradient, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .looked_strip import mark_thumbnail, share_text
from .page_item import highlight_color
from .theme import is_dark

# (background, text, border) of each kind of banner, on the light and on the dark theme (text over 7:1 on both).
BANNER_COLORS = {
    "light": {"info": ("#dbeafe", "#1e3a8a", "#93c5fd"), "warning": ("#fef3c7", "#78350f", "#fcd34d"),
              "error": ("#fee2e2", "#7f1d1d", "#fca5a5")},
    "dark": {"info": ("#172a45", "#dbeafe", "#3b6fb6"), "warning": ("#3d2f0c", "#fef3c7", "#a16207"),
             "error": ("#441616", "#fee2e2", "#b91c1c")},
}


class Banner(QFrame):
    def __init__(self, kind: str, text: str, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.setObjectName(f"banner_{kind}")
        self.follow_theme()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)

    def text(self) -> str:
        return self.label.text()

    def follow_theme(self) -> None:
        """The banner's colours for the theme now shown (called again on a theme change)."""
        background, color, border = BANNER_COLORS["dark" if is_dark() else "light"][self.kind]
        name = f"banner_{self.kind}"
        self.setStyleSheet(f"#{name} {{ background: {background}; color: {color}; border: 1px solid {border}; "
                           f"border-radius: 4px; }} #{name} QLabel, #{name} QToolButton {{ color: {color}; "
                           "background: transparent; border: none; }")


class BannerArea(QWidget):
    """A column of dismissable banners, at most one per key (a new one replaces the old)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 2, 4, 2)
        self._banners: dict[str, Banner] = {}

    def show_banner(self, key: str, kind: str, text: str) -> Banner:
        self.remove(key)
        banner = Banner(kind, text)
        self._banners[key] = banner
        self._layout.addWidget(banner)
        banner.show()  # a layout would only show it on the next event loop pass
        return banner

    def remove(self, key: str) -> None:
        banner = self._banners.pop(key, None)
        if banner is not None:
            banner.setParent(None)
            banner.deleteLater()

    def clear(self) -> None:
        for key in list(self._banners):
            self.remove(key)

    def texts(self) -> dict[str, str]:
        """Visible banners by key (for tests and the status line)."""
        return {key: banner.text() for key, banner in self._banners.items() if not banner.isHidden()}


class FindBar(QWidget):
    """Find in the document: ``sig_find(text)`` on a new text, ``sig_next(step)`` for F3/Shift+F3, ``sig_closed``."""

    sig_find = Signal(str)
    sig_next = Signal(int)
    sig_closed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Find in document")
        self.edit.setClearButtonEnabled(True)
        self.edit.returnPressed.connect(self._return_pressed)
        self.previous = QPushButton("◀")
        self.previous.setToolTip("Previous hit (Shift+F3)")
        self.previous.clicked.connect(lambda: self.sig_next.emit(-1))
        self.next = QPushButton("▶")
        self.next.setToolTip("Next hit (F3)")
        self.next.clicked.connect(lambda: self.sig_next.emit(1))
        self.count = QLabel("")
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.close_bar)
        layout.addWidget(QLabel("Find:"))
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.previous)
        layout.addWidget(self.next)
        layout.addWidget(self.count)
        layout.addWidget(close)
        self._searched = ""

    def _return_pressed(self) -> None:
        text = self.edit.text()
        if text != self._searched:
            self._searched = text
            self.count.setText("searching…")
            self.sig_find.emit(text)
        else:
            self.sig_next.emit(1)

    def set_count(self, count: int, index: int = -1) -> None:
        if not self._searched:
            self.count.setText("")
        elif count == 0:
            self.count.setText("no hits")
        else:
            self.count.setText(f"{index + 1} of {count}" if index >= 0 else f"{count} hits")

    def close_bar(self) -> None:
        self._searched = ""
        self.hide()
        self.sig_closed.emit()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close_bar()
            return
        super().keyPressEvent(event)


class RelevanceLegend(QWidget):
    """'low → high' with the highlight colour ramp used on the pages."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        ramp = QLabel()
        ramp.setPixmap(self._ramp(QSize(70, 12)))
        ramp.setToolTip("Orange marks the words the answer rests on; the stronger the orange, the more it "
                        "relied on them")
        layout.addWidget(QLabel("low"))
        layout.addWidget(ramp)
        layout.addWidget(QLabel("high relevance"))

    @staticmethod
    def _ramp(size: QSize) -> QPixmap:
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.white)
        painter = QPainter(pixmap)
        gradient = QLinearGradient(0, 0, size.width(), 0)
        gradient.setColorAt(0.0, highlight_color(0.0))
        gradient.setColorAt(1.0, highlight_color(1.0))
        painter.fillRect(pixmap.rect(), gradient)
        painter.end()
        return pixmap


class SidePanel(QTabWidget):
    """Outline and thumbnails (marked with where the selected answer's passages lie); ``sig_go(page)`` when the user
    picks one (0-based page)."""

    sig_go = Signal(int)
    THUMB_SIZE = QSize(90, 120)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.outline = QTreeWidget()
        self.outline.setHeaderHidden(True)
        self.outline.itemClicked.connect(self._outline_chosen)
        self.outline.itemActivated.connect(self._outline_chosen)
        self.thumbnails = QListWidget()
        self.thumbnails.setViewMode(QListWidget.ViewMode.IconMode)
        self.thumbnails.setIconSize(self.THUMB_SIZE)
        self.thumbnails.setMovement(QListWidget.Movement.Static)
        self.thumbnails.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.thumbnails.setFlow(QListWidget.Flow.TopToBottom)
        self.thumbnails.setWrapping(False)
        self.thumbnails.setGridSize(QSize(self.THUMB_SIZE.width() + 24, self.THUMB_SIZE.height() + 28))
        self.thumbnails.itemClicked.connect(lambda item: self.sig_go.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.addTab(self.outline, "Outline")
        self.addTab(self.thumbnails, "Pages")
        self._blank = QPixmap(self.THUMB_SIZE)
        self._blank.fill(Qt.GlobalColor.white)
        self._images: dict[int, QPixmap] = {}  # framed page images, unmarked
        self.looked: dict[int, float] = {}  # 0-based page -> share of the selected answer

    def set_document(self, outline: list[tuple[int, str, int]], page_count: int) -> None:
        self.outline.clear()
        parents: list[QTreeWidgetItem] = []
        for level, title, page in outline:
            parents = parents[:max(0, level - 1)]
            item = QTreeWidgetItem([title])
            item.setData(0, Qt.ItemDataRole.UserRole, page)
            item.setToolTip(0, f"{title} (page {page + 1})")  # the full title, where the panel cuts it
            (parents[-1].addChild(item) if parents else self.outline.addTopLevelItem(item))
            parents.append(item)
        if not outline:
            empty = QTreeWidgetItem(["This document has no outline"])
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.outline.addTopLevelItem(empty)
        self.outline.expandToDepth(0)
        self.thumbnails.clear()
        self._images, self.looked = {}, {}
        for page in range(page_count):
            item = QListWidgetItem(QIcon(self._blank), str(page + 1))
            item.setData(Qt.ItemDataRole.UserRole, page)
            self.thumbnails.addItem(item)
        if self.currentWidget() in (self.outline, self.thumbnails):  # another tab (the library) stays in front
            self.setCurrentIndex(0 if outline else 1)

    def _outline_chosen(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        page = item.data(0, Qt.ItemDataRole.UserRole)
        if page is not None:
            self.sig_go.emit(page)

    def follow_page(self, page: int) -> None:
        """Select (and show) the thumbnail of the page being read, without jumping to it again."""
        item = self.thumbnails.item(page)
        if item is not None:
            self.thumbnails.blockSignals(True)
            self.thumbnails.setCurrentItem(item)
            self.thumbnails.blockSignals(False)
            self.thumbnails.scrollToItem(item)

    def set_thumbnail(self, page: int, image: QImage) -> None:
        item = self.thumbnails.item(page)
        if item is not None:
            framed = QPixmap(image.width() + 2, image.height() + 2)
            framed.fill(Qt.GlobalColor.gray)
            painter = QPainter(framed)
            painter.drawImage(1, 1, image)
            painter.end()
            self._images[page] = framed
            self._show_thumbnail(page)

    def set_looked(self, shares: dict[int, float]) -> None:
        """Mark the thumbnails of the pages the selected answer rests on (app/gui/looked_strip.py); {} clears."""
        changed = set(self.looked) | set(shares)
        self.looked = dict(shares)
        for page in changed:
            self._show_thumbnail(page)

    def _show_thumbnail(self, page: int) -> None:
        item = self.thumbnails.item(page)
        if item is None:
            return
        share = self.looked.get(page)
        image = self._images.get(page, self._blank)
        strongest = max(self.looked.values(), default=0.0)
        item.setIcon(QIcon(mark_thumbnail(image, share, strongest) if share else image))
        item.setText(f"{page + 1}  ·  {share:.0%}" if share else str(page + 1))
        item.setToolTip(share_text(page, share) if share else "")
