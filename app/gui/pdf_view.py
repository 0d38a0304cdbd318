"""The reader: every page in one QGraphicsScene, laid out in PDF points, scrolled continuously.

The scene is in PDF points and the view's transform is the zoom, so find hits,
the text selection and relevance highlights (all in points) stay exact at every
zoom. Page images come from ``PdfWorker`` at ``zoom * devicePixelRatio`` pixels
per point, only for pages near the viewport, into a byte-bounded LRU cache keyed
by (page, scale); a page without an image at the current scale draws the
nearest cached one stretched, then white.
"""
from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QKeySequence, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView

from .pdf_worker import PageWord, PdfInfo, PdfWorker
from .relevance import Highlight

PAGE_GAP = 12.0  # points between pages
MIN_ZOOM, MAX_ZOOM = 0.1, 8.0
ZOOM_STEP = 1.2
RENDER_MARGIN_PAGES = 1  # pages rendered beyond the visible ones, each way
CACHE_BYTES = 256 * 1024**2
HIGHLIGHT_RGB = (255, 140, 0)  # relevance: orange, alpha follows the score
FIND_COLOR = QColor(255, 230, 0, 110)
FIND_CURRENT_COLOR = QColor(255, 120, 0, 150)
SELECTION_COLOR = QColor(40, 110, 255, 90)
FLASH_COLOR = QColor(0, 170, 255, 140)


def highlight_color(intensity: float) -> QColor:
    """Relevance colour: more opaque for a higher score (the legend uses the same function)."""
    return QColor(*HIGHLIGHT_RGB, int(40 + 150 * max(0.0, min(1.0, intensity))))


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
    """One page: its image plus find hits, selection, relevance highlights and a flash, all in points."""

    def __init__(self, view: "PdfView", number: int, width: float, height: float) -> None:
        super().__init__()
        self.view = view
        self.number = number
        self.size = (width, height)
        self.find_hits: list[QRectF] = []
        self.current_hit: QRectF | None = None
        self.selection: list[QRectF] = []
        self.highlights: list[Highlight] = []
        self.flash_rects: list[QRectF] = []
        self.flash_on = False

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self.size)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        rect = self.boundingRect()
        painter.fillRect(rect, Qt.GlobalColor.white)
        pixmap = self.view.cache.get(self.number, self.view.render_scale()) or self.view.cache.any_for(self.number)
        if pixmap is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(rect, pixmap, QRectF(pixmap.rect()))
        painter.setPen(Qt.PenStyle.NoPen)
        if self.view.highlights_visible:
            for light in self.highlights:
                painter.setBrush(highlight_color(light.intensity))
                painter.drawRect(QRectF(light.x0, light.y0, light.x1 - light.x0, light.y1 - light.y0))
        for hit in self.find_hits:
            painter.setBrush(FIND_CURRENT_COLOR if hit == self.current_hit else FIND_COLOR)
            painter.drawRect(hit)
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


class PdfView(QGraphicsView):
    """Continuous-scroll PDF reader.

    Signals: ``sig_page_changed(page)`` 0-based page at the viewport's centre;
    ``sig_zoom_changed(zoom)``; ``sig_opened(info)`` a ``PdfInfo``; ``sig_find_done(count)``;
    ``sig_failed(message)``; ``sig_thumbnail(page, image)`` small page images for the side panel.
    """

    sig_page_changed = Signal(int)
    sig_zoom_changed = Signal(float)
    sig_opened = Signal(object)
    sig_find_done = Signal(int)
    sig_failed = Signal(str)
    sig_thumbnail = Signal(int, QImage)
    THUMB_SCALE = 0.18

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(self.palette().dark())
        self.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)  # fit width stays stable
        self.cache = RenderCache()
        self.pages: list[PageItem] = []
        self.words: dict[int, list[PageWord]] = {}
        self.info: PdfInfo | None = None
        self.zoom = 1.0
        self.fit_mode: str | None = "width"  # "width", "page" or None (fixed zoom)
        self.highlights_visible = True
        self.find_hits: list[tuple[int, QRectF]] = []
        self.find_index = -1
        self._find_generation = 0
        self._find_text = ""
        self._current_page = -1
        self._pending_page: int | None = None
        self._selection_anchor: tuple[int, int] | None = None
        self._selected: list[tuple[int, int]] = []  # (page, word index) in reading order
        self._flash_ticks = 0
        self._flash_timer = QTimer(self, interval=180)
        self._flash_timer.timeout.connect(self._flash_step)
        self._render_timer = QTimer(self, singleShot=True, interval=40)
        self._render_timer.timeout.connect(self._request_renders)
        self.worker = PdfWorker()
        self.worker.sig_opened.connect(self._on_opened)
        self.worker.sig_rendered.connect(self._on_rendered)
        self.worker.sig_words.connect(self._on_words)
        self.worker.sig_found.connect(self._on_found)
        self.worker.sig_failed.connect(self.sig_failed)
        self.worker.start()
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.horizontalScrollBar().valueChanged.connect(lambda _: self._schedule_render())

    # --- document -------------------------------------------------------------------------
    def open(self, path: str, page: int = 0, password: str | None = None) -> None:
        """Open ``path`` in the background; ``sig_opened`` follows, then the view shows ``page``."""
        self.close_document()  # until it opens, "go to page" requests wait for the new document
        self._pending_page = page
        self.worker.open(path, password)

    def close_document(self) -> None:
        self.scene().clear()
        self.pages, self.words, self.info = [], {}, None
        self.cache.clear()
        self.find_hits, self.find_index = [], -1

    def shutdown(self) -> None:
        self.worker.stop()

    def page_count(self) -> int:
        return len(self.pages)

    def _on_opened(self, info: PdfInfo) -> None:
        self.close_document()
        self.info = info
        y = 0.0
        widest = max(width for width, _ in info.page_sizes)
        for number, (width, height) in enumerate(info.page_sizes):
            item = PageItem(self, number, width, height)
            item.setPos((widest - width) / 2, y)
            self.scene().addItem(item)
            self.pages.append(item)
            y += height + PAGE_GAP
        self.scene().setSceneRect(QRectF(-PAGE_GAP, -PAGE_GAP, widest + 2 * PAGE_GAP, y + PAGE_GAP))
        self._current_page = -1
        self._apply_fit()
        self.go_to_page(self._pending_page or 0)
        self._pending_page = None
        self.worker.request_thumbnails([(n, self.THUMB_SCALE) for n in range(min(len(self.pages), 400))])
        self.sig_opened.emit(info)
        self._schedule_render()

    # --- rendering --------------------------------------------------------------------------
    def render_scale(self) -> float:
        return round(self.zoom * self.devicePixelRatioF(), 3)

    def visible_pages(self) -> list[int]:
        area = self.mapToScene(self.viewport().rect()).boundingRect()
        return [item.number for item in self.pages if item.sceneBoundingRect().intersects(area)]

    def _schedule_render(self) -> None:
        if self.pages:
            self._render_timer.start()

    def _request_renders(self) -> None:
        visible = self.visible_pages()
        if not visible:
            return
        first = max(0, visible[0] - RENDER_MARGIN_PAGES)
        last = min(len(self.pages) - 1, visible[-1] + RENDER_MARGIN_PAGES)
        wanted_pages = visible + [n for n in range(first, last + 1) if n not in visible]
        scale = self.render_scale()
        self.worker.request_renders([(n, scale) for n in wanted_pages if self.cache.get(n, scale) is None])

    def _on_rendered(self, page: int, scale: float, image: QImage) -> None:
        if scale == self.THUMB_SCALE:
            self.sig_thumbnail.emit(page, image)
            return
        if page < len(self.pages):
            self.cache.put(page, scale, QPixmap.fromImage(image))
            self.pages[page].update()

    def _on_words(self, page: int, words: list[PageWord]) -> None:
        self.words[page] = words

    # --- zoom -------------------------------------------------------------------------------
    def set_zoom(self, zoom: float, fit_mode: str | None = None) -> None:
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self.fit_mode = fit_mode
        page = self.current_page()
        offset = self._center_offset_in_page()
        self.zoom = zoom
        self.setTransform(QTransform.fromScale(zoom, zoom))
        if self.pages:
            self._center_on_page_offset(page, offset)
        self.sig_zoom_changed.emit(zoom)
        self._schedule_render()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def fit_width(self) -> None:
        self.fit_mode = "width"
        self._apply_fit()

    def fit_page(self) -> None:
        self.fit_mode = "page"
        self._apply_fit()

    def _apply_fit(self) -> None:
        if not self.pages or self.fit_mode is None:
            self.setTransform(QTransform.fromScale(self.zoom, self.zoom))
            return
        width = self.scene().sceneRect().width()  # the widest page plus its margins
        height = self.pages[max(0, self.current_page())].size[1] + 2 * PAGE_GAP
        room_w, room_h = max(50, self.viewport().width() - 2), max(50, self.viewport().height() - 2)
        zoom = room_w / width if self.fit_mode == "width" else min(room_w / width, room_h / height)
        self.set_zoom(zoom, self.fit_mode)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self._apply_fit()
        self._schedule_render()

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # the system switched between light and dark
            self.setBackgroundBrush(self.palette().dark())
        super().changeEvent(event)

    def wheelEvent(self, event) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_in() if event.angleDelta().y() > 0 else self.zoom_out()
            event.accept()
            return
        super().wheelEvent(event)

    # --- navigation -------------------------------------------------------------------------
    def current_page(self) -> int:
        if not self.pages:
            return 0
        center = self.mapToScene(self.viewport().rect().center())
        for item in self.pages:
            rect = item.sceneBoundingRect()
            if center.y() < rect.bottom() + PAGE_GAP:
                return item.number
        return len(self.pages) - 1

    def go_to_page(self, page: int, y: float | None = None) -> None:
        """Scroll so that page ``page`` (0-based) starts at the top, or point ``y`` of it is in view."""
        if not self.pages:
            self._pending_page = page
            return
        page = max(0, min(len(self.pages) - 1, page))
        rect = self.pages[page].sceneBoundingRect()
        if y is None:
            top = self.mapFromScene(QPointF(rect.left(), rect.top() - PAGE_GAP / 2))
            bar = self.verticalScrollBar()
            bar.setValue(bar.value() + top.y())
        else:  # the point a third of the way down the viewport: context above, room below
            visible = self.mapToScene(self.viewport().rect()).boundingRect()
            self.centerOn(QPointF(visible.center().x(), rect.top() + y + visible.height() / 6))
        self._on_scrolled()

    def _center_offset_in_page(self) -> float:
        if not self.pages:
            return 0.0
        center = self.mapToScene(self.viewport().rect().center())
        return center.y() - self.pages[self.current_page()].sceneBoundingRect().top()

    def _center_on_page_offset(self, page: int, offset: float) -> None:
        rect = self.pages[page].sceneBoundingRect()
        self.centerOn(QPointF(rect.center().x(), rect.top() + offset))

    def _on_scrolled(self, *_) -> None:
        page = self.current_page()
        if page != self._current_page and self.pages:
            self._current_page = page
            self.sig_page_changed.emit(page)
        self._schedule_render()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif key == Qt.Key.Key_Home:
            self.go_to_page(0)
        elif key == Qt.Key.Key_End:
            self.go_to_page(len(self.pages) - 1)
        elif key == Qt.Key.Key_PageDown:
            self.go_to_page(self.current_page() + 1)
        elif key == Qt.Key.Key_PageUp:
            self.go_to_page(self.current_page() - 1)
        else:
            super().keyPressEvent(event)

    # --- find -------------------------------------------------------------------------------
    def find(self, text: str) -> None:
        """Search the whole document in the background; ``sig_find_done(count)`` follows."""
        self._find_generation += 1
        self._find_text = text
        self.worker.find(self._find_generation, text)

    def _on_found(self, generation: int, text: str, hits: list) -> None:
        if generation != self._find_generation:
            return  # a newer search is on its way
        for item in self.pages:
            item.find_hits, item.current_hit = [], None
        self.find_hits = []
        for page, (x0, y0, x1, y1) in hits:
            if page < len(self.pages):
                rect = QRectF(x0, y0, x1 - x0, y1 - y0)
                self.pages[page].find_hits.append(rect)
                self.find_hits.append((page, rect))
        self.find_index = -1
        start = self.current_page()
        if self.find_hits:
            self.find_index = next((i for i, (p, _) in enumerate(self.find_hits) if p >= start), 0)
            self._show_hit()
        self.viewport().update()
        self.sig_find_done.emit(len(self.find_hits))

    def find_next(self, step: int = 1) -> None:
        if not self.find_hits:
            return
        self.find_index = (self.find_index + step) % len(self.find_hits)
        self._show_hit()

    def _show_hit(self) -> None:
        for item in self.pages:
            item.current_hit = None
        page, rect = self.find_hits[self.find_index]
        self.pages[page].current_hit = rect
        self.go_to_page(page, rect.center().y())
        self.viewport().update()

    def clear_find(self) -> None:
        self._find_generation += 1
        for item in self.pages:
            item.find_hits, item.current_hit = [], None
        self.find_hits, self.find_index = [], -1
        self.viewport().update()

    # --- highlights -------------------------------------------------------------------------
    def set_highlights(self, highlights: list[Highlight]) -> None:
        for item in self.pages:
            item.highlights = []
        for light in highlights:
            if 0 <= light.page < len(self.pages):
                self.pages[light.page].highlights.append(light)
        self.viewport().update()

    def set_highlights_visible(self, visible: bool) -> None:
        self.highlights_visible = visible
        self.viewport().update()

    def flash(self, page: int, boxes: list[list[float]]) -> None:
        """Scroll to ``page`` (0-based) and blink ``boxes`` (PDF points) a few times."""
        if not 0 <= page < len(self.pages):
            return
        for item in self.pages:
            item.flash_rects, item.flash_on = [], False
        rects = [QRectF(b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in boxes]
        self.pages[page].flash_rects = rects
        if rects:
            top = min(r.top() for r in rects)
            bottom = max(r.bottom() for r in rects)
            self.go_to_page(page, (top + bottom) / 2)
        else:
            self.go_to_page(page)
        self._flash_ticks = 8
        self._flash_step()
        self._flash_timer.start()

    def _flash_step(self) -> None:
        self._flash_ticks -= 1
        for item in self.pages:
            if item.flash_rects:
                item.flash_on = self._flash_ticks > 0 and self._flash_ticks % 2 == 1
                item.update()
        if self._flash_ticks <= 0:
            self._flash_timer.stop()

    # --- text selection ---------------------------------------------------------------------
    def _word_at(self, scene_pos: QPointF, nearest: bool) -> tuple[int, int] | None:
        for item in self.pages:
            rect = item.sceneBoundingRect()
            if rect.top() - PAGE_GAP <= scene_pos.y() <= rect.bottom() + PAGE_GAP:
                words = self.words.get(item.number) or []
                if not words:
                    return None
                point = item.mapFromScene(scene_pos)
                best, best_distance = None, None
                for index, word in enumerate(words):
                    dx = max(word.x0 - point.x(), 0, point.x() - word.x1)
                    dy = max(word.y0 - point.y(), 0, point.y() - word.y1)
                    distance = dx * dx + 4 * dy * dy  # prefer the same line
                    if best_distance is None or distance < best_distance:
                        best, best_distance = index, distance
                if best is not None and (nearest or best_distance == 0):
                    return item.number, best
                return None
        return None

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.pages:
            self._selection_anchor = self._word_at(self.mapToScene(event.position().toPoint()), nearest=True)
            self._set_selection([])
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._selection_anchor is not None and event.buttons() & Qt.MouseButton.LeftButton:
            end = self._word_at(self.mapToScene(event.position().toPoint()), nearest=True)
            if end is not None:
                self.select_words(self._selection_anchor, end)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        self._selection_anchor = None
        super().mouseReleaseEvent(event)

    def select_words(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        """Select the words from ``start`` to ``end`` ((page, word index), either order), across pages."""
        start, end = sorted([start, end])
        selected = []
        for page in range(start[0], end[0] + 1):
            words = self.words.get(page) or []
            first = start[1] if page == start[0] else 0
            last = end[1] if page == end[0] else len(words) - 1
            selected.extend((page, i) for i in range(first, min(last, len(words) - 1) + 1))
        self._set_selection(selected)

    def _set_selection(self, selected: list[tuple[int, int]]) -> None:
        self._selected = selected
        for item in self.pages:
            item.selection = []
        for page, index in selected:
            word = self.words[page][index]
            self.pages[page].selection.append(QRectF(word.x0, word.y0, word.x1 - word.x0, word.y1 - word.y0))
        self.viewport().update()

    def selected_text(self) -> str:
        parts, previous = [], None
        for page, index in self._selected:
            word = self.words[page][index]
            if previous is not None:
                parts.append(" " if previous == (page, word.block, word.line) else "\n")
            parts.append(word.text)
            previous = (page, word.block, word.line)
        return "".join(parts)

    def copy_selection(self) -> bool:
        text = self.selected_text()
        if text:
            QGuiApplication.clipboard().setText(text)
        return bool(text)
