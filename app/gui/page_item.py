"""One page in the reader's scene, its colours, and the byte-bounded cache of rendered page images."""
from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsItem

CACHE_BYTES = 256 * 1024**2
HIGHLIGHT_RGB = (255, 140, 0)  # relevance: orange, alpha follows the weight
# Find hits are violet, so they never read as relevance (orange) or as the selection and flash (blue).
FIND_COLOR = QColor(150, 90, 255, 80)
FIND_CURRENT_COLOR = QColor(120, 40, 230, 150)
FIND_CURRENT_EDGE = QColor(90, 20, 190)
SELECTION_COLOR = QColor(40, 110, 255, 90)
FLASH_COLOR = QColor(0, 170, 255, 140)


def highlight_color(weight: float) -> QColor:
    """Relevance colour: more opaque for a higher weight (the legend uses the same function)."""
    return QColor(*HIGHLIGHT_RGB, int(40 + 150 * max(0.0, min(1.0, weight))))


def box_rect(box) -> QRectF:
    """[x0, y0, x1, y1] in points as a QRectF."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    return QRectF(x0, y0, x1 - x0, y1 - y0)


class RenderCache:
    """Page images keyed by (page, scale), least recently used dropped past ``cap_bytes``."""

    def __init__(self, cap_bytes: int = CACHE_BYTES) -> None:
        self.cap_bytes = cap_bytes
        self._items: OrderedDict[tuple[int, float], QPixmap] = OrderedDict()
        self.bytes = 0

    def get(self, page: int, scale: float) -> QPixmap | None:
        pixmap = self._items.get((page, scale))
        if pixmap is not None:
            self._items.move_to_end((page, scale))
        return pixmap

    def any_for(self, page: int) -> QPixmap | None:
        """The largest cached image of ``page`` at any scale (a placeholder while rendering)."""
        found = [(key[1], pixmap) for key, pixmap in self._items.items() if key[0] == page]
        return max(found, key=lambda item: item[0])[1] if found else None

    def put(self, page: int, scale: float, pixmap: QPixmap) -> None:
        key = (page, scale)
        if key in self._items:
            self.bytes -= _pixmap_bytes(self._items.pop(key))
        self._items[key] = pixmap
        self.bytes += _pixmap_bytes(pixmap)
        while self.bytes > self.cap_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= _pixmap_bytes(dropped)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)


def _pixmap_bytes(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * 4


class PageItem(QGraphicsItem):
    """One page: its image plus relevance highlights, find hits, selection and a flash, all in points.

    ``highlights`` are (rect, weight) pairs; the view fills the lists and calls ``update()``."""

    def __init__(self, view, number: int, width: float, height: float) -> None:
        super().__init__()
        self.view = view
        self.number = number
        self.size = (width, height)
        self.highlights: list[tuple[QRectF, float]] = []
        self.find_hits: list[QRectF] = []
        self.current_hit: QRectF | None = None
        self.selection: list[QRectF] = []
        self.flash_rects: list[QRectF] = []
        self.flash_on = False

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.size)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        rect = self.boundingRect()
        painter.fillRect(rect, Qt.GlobalColor.white)
        cache = self.view.cache
        pixmap = cache.get(self.number, self.view.render_scale()) or cache.any_for(self.number)
        if pixmap is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(rect, pixmap, QRectF(pixmap.rect()))
        painter.setPen(Qt.PenStyle.NoPen)
        if self.view.highlights_visible:
            for box, weight in self.highlights:
                painter.setBrush(highlight_color(weight))
                painter.drawRect(box)
        painter.setBrush(FIND_COLOR)
        for hit in self.find_hits:
            if hit != self.current_hit:
                painter.drawRect(hit)
        if self.current_hit is not None:
            painter.setBrush(FIND_CURRENT_COLOR)
            painter.setPen(QPen(FIND_CURRENT_EDGE, 1.2))
            painter.drawRect(self.current_hit)
            painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(SELECTION_COLOR)
        for box in self.selection:
            painter.drawRect(box)
        if self.flash_on:
            painter.setBrush(FLASH_COLOR)
            painter.setPen(QPen(QColor(0, 120, 220), 1.5))
            for box in self.flash_rects:
                painter.drawRect(box)
        painter.setPen(QPen(QColor(0, 0, 0, 60), 0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
