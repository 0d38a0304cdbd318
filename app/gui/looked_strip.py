"""Where the model looked: per page, the share of what the selected answer rests on, beside the scrollbar.

The shares come from the answer's own story (engine/answer.py), the same passages and weights as its evidence,
citations and highlights: half from the evidence passages (each weighs its relevance score, best = 1; the cited
ones are among them) and half from the highlighted words (each weighs its highlight weight), so a page holding
the passages the answer read and the words it leaned on stands out. An answer with only one of the two uses it
alone. Of an answer across the library, only the open document's pages are marked, each with its share of the
whole answer (so the marks say how much of the answer lies in this document too).

``LookedStrip`` is a slim strip between the page view and its vertical scrollbar (the view's viewport gives it
room): the whole document from top to bottom, as the scrollbar's groove maps it, with an orange mark on each page that
holds part of the answer, wider and stronger for a larger share. Hover a mark for its page and share; click it
to go there (``sig_go(page)``, 0-based). The side panel's thumbnails get the same marks (``mark_thumbnail``).
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyleOptionSlider, QToolTip, QWidget

from .page_item import HIGHLIGHT_RGB

STRIP_WIDTH = 12  # pixels
MIN_MARK_HEIGHT = 5.0  # pixels: a page of a long document still gets a mark one can hit
HIT_SLOP = 3.0  # pixels around a mark that still count as a click on it


def page_shares(entry: dict, sha256: str | None = None) -> dict[int, float]:
    """0-based page -> its share (0, 1] of what the answer ``entry`` rests on (an entry dict of
    app/gui/answer_card.py; 1-based pages in it). Empty for no answer (``{}``) or one without passages."""
    library = bool(entry.get("library"))

    def here(document) -> bool:
        if not library:
            return True
        return (document.get("sha256") if isinstance(document, dict) else document) == sha256

    parts = []
    for items, weight_key in ((entry.get("evidence") or [], "score"), (entry.get("highlights") or [], "weight")):
        weights = [(_get(item, "page"), max(0.0, float(_get(item, weight_key) or 0.0)), _get(item, "document"))
                   for item in items]
        total = sum(weight for _, weight, _ in weights)
        if total > 0:
            part: dict[int, float] = {}
            for page, weight, document in weights:
                if weight > 0 and here(document):
                    part[int(page) - 1] = part.get(int(page) - 1, 0.0) + weight / total
            parts.append(part)
    shares: dict[int, float] = {}
    for part in parts:
        for page, share in part.items():
            shares[page] = shares.get(page, 0.0) + share / len(parts)
    return {page: share for page, share in sorted(shares.items()) if share > 0}


def _get(item, key: str):
    return item.get(key) if isinstance(item, dict) else getattr(item, key, None)


def mark_color(strength: float) -> QColor:
    """The marks' orange (the highlights' hue), stronger for a larger share (``strength`` in [0, 1])."""
    return QColor(*HIGHLIGHT_RGB, int(110 + 145 * max(0.0, min(1.0, strength))))


def share_text(page: int, share: float) -> str:
    return f"Page {page + 1}: {share:.0%} of what the model kept for the selected answer"


def mark_thumbnail(pixmap: QPixmap, share: float, strongest: float) -> QPixmap:
    """A thumbnail with the strip's mark: an orange bar up its right edge, as tall as the page's share is to the
    largest one, and an orange frame."""
    marked = QPixmap(pixmap)
    painter = QPainter(marked)
    strength = share / strongest if strongest > 0 else 0.0
    color = mark_color(strength)
    height = max(6.0, marked.height() * strength)
    painter.fillRect(QRectF(marked.width() - 7, marked.height() - height, 7, height), color)
    painter.setPen(color)
    painter.drawRect(marked.rect().adjusted(0, 0, -1, -1))
    painter.end()
    return marked


class LookedStrip(QWidget):
    """The strip beside ``view``'s scrollbar (a ``PdfView``); ``set_shares(page_shares(...))`` draws it."""

    sig_go = Signal(int)

    def __init__(self, view) -> None:
        super().__init__(view)
        self.view = view
        self.shares: dict[int, float] = {}
        self.setFixedWidth(STRIP_WIDTH)
        self.setMouseTracking(True)
        self.setAutoFillBackground(False)
        view.setViewportMargins(0, 0, STRIP_WIDTH, 0)
        self._follower = _ResizeFollower(self)
        view.viewport().installEventFilter(self._follower)
        view.sig_opened.connect(lambda _info: self.update())
        self._place()

    def set_shares(self, shares: dict[int, float]) -> None:
        self.shares = dict(shares)
        self.setToolTip("")
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self.update()

    def marks(self) -> list[tuple[int, QRectF]]:
        """(0-based page, rectangle in this widget) of each mark, top to bottom."""
        layout = self.view.layout_model
        if not self.shares or not len(layout):
            return []
        top, height = layout.scene_rect()[1], layout.scene_rect()[3]
        groove_top, groove_height = self.groove()
        strongest = max(self.shares.values())
        marks = []
        for page, share in self.shares.items():
            if not 0 <= page < len(layout):
                continue
            y, page_height = layout.page_origin(page)[1], layout.sizes[page][1]
            y0 = groove_top + (y - top) / height * groove_height
            y1 = groove_top + (y + page_height - top) / height * groove_height
            if y1 - y0 < MIN_MARK_HEIGHT:
                middle = (y0 + y1) / 2
                y0, y1 = middle - MIN_MARK_HEIGHT / 2, middle + MIN_MARK_HEIGHT / 2
            width = max(4.0, (STRIP_WIDTH - 3) * share / strongest)
            marks.append((page, QRectF(2, y0, width, y1 - y0)))
        return marks

    def groove(self) -> tuple[float, float]:
        """(top, height) in this strip of the scrollbar's groove, where the bar maps the whole document (its
        handle covers the part in view): a mark lies level with the handle when its page is in view."""
        bar = self.view.verticalScrollBar()
        option = QStyleOptionSlider()
        bar.initStyleOption(option)
        groove = bar.style().subControlRect(QStyle.ComplexControl.CC_ScrollBar, option,
                                            QStyle.SubControl.SC_ScrollBarGroove, bar)
        top = bar.mapTo(self.view, groove.topLeft()).y() - self.y()
        if groove.height() <= 0 or not bar.isVisible():
            return 0.0, float(self.height())
        return float(top), float(groove.height())

    def mark_at(self, y: float) -> int | None:
        """The page of the mark at height ``y`` (or within a few pixels of it), else None."""
        near = [(abs(rect.center().y() - y), page) for page, rect in self.marks()
                if rect.top() - HIT_SLOP <= y <= rect.bottom() + HIT_SLOP]
        return min(near)[1] if near else None

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.drawLine(0, 0, 0, self.height())
        strongest = max(self.shares.values(), default=1.0)
        for page, rect in self.marks():
            painter.fillRect(rect, mark_color(self.shares[page] / strongest))
        painter.end()

    def mouseMoveEvent(self, event) -> None:
        page = self.mark_at(event.position().y())
        self.setCursor(Qt.CursorShape.PointingHandCursor if page is not None else Qt.CursorShape.ArrowCursor)
        if page is not None:
            QToolTip.showText(event.globalPosition().toPoint(), share_text(page, self.shares[page]), self)
        else:
            QToolTip.hideText()

    def mousePressEvent(self, event) -> None:
        page = self.mark_at(event.position().y())
        if event.button() == Qt.MouseButton.LeftButton and page is not None:
            self.sig_go.emit(page)
            event.accept()
            return
        super().mousePressEvent(event)

    def _place(self) -> None:
        """Between the viewport and the vertical scrollbar, as tall as the viewport."""
        viewport = self.view.viewport().geometry()
        self.setGeometry(viewport.right() + 1, viewport.top(), STRIP_WIDTH, viewport.height())
        self.raise_()


class _ResizeFollower(QObject):
    """Keeps the strip beside the viewport when the view lays it out again (the viewport's own events come once
    its new geometry is set)."""

    def __init__(self, strip: LookedStrip) -> None:
        super().__init__(strip)
        self.strip = strip

    def eventFilter(self, watched, event) -> bool:
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Move, QEvent.Type.Show):
            self.strip._place()
        return False
