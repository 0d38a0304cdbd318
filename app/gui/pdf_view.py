"""The reader: every page in one QGraphicsScene, laid out in PDF points, scrolled continuously.

Where pages and words are is the ``PageLayout`` model's business (app/gui/page_layout.py); this view
draws it. The scene is in PDF points and the view's transform is the zoom, so find hits, the text
selection and relevance highlights (all in points) stay exact at every zoom. Page images come from
``PdfWorker`` (in its own thread) at ``zoom * devicePixelRatio`` pixels per point, only for pages
near the viewport, into a byte-bounded LRU cache keyed by (page, scale); a page without an image at
the current scale draws the nearest cached one stretched, then white.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage, QKeySequence, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from .page_item import PageItem, RenderCache, box_rect
from .page_layout import PAGE_GAP, PageLayout
from .pdf_worker import PDF_LOCK, PdfInfo, PdfWorker, WorkerThread

MIN_ZOOM, MAX_ZOOM = 0.1, 8.0
ZOOM_STEP = 1.2
RENDER_MARGIN_PAGES = 1  # pages rendered beyond the visible ones, each way
THUMBNAIL_LIMIT = 400


class PdfView(QGraphicsView):
    """Continuous-scroll PDF reader.

    Signals: ``sig_page_changed(page)`` 0-based page at the viewport's centre;
    ``sig_zoom_changed(zoom, fit_mode)`` (fit_mode "width", "page" or "" for a fixed zoom);
    ``sig_opened(info)`` a ``PdfInfo``; ``sig_find_done(count)``; ``sig_failed(message)``;
    ``sig_thumbnail(page, image)`` small page images for the side panel.
    """

    sig_page_changed = Signal(int)
    sig_zoom_changed = Signal(float, str)
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
        self.layout_model = PageLayout()
        self.pages: list[PageItem] = []
        self.info: PdfInfo | None = None
        self.zoom = 1.0
        self.fit_mode: str | None = "width"  # "width", "page" or None (fixed zoom)
        self.highlights_visible = True
        self.find_hits: list[tuple[int, QRectF]] = []
        self.find_index = -1
        self._find_generation = 0
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
        self.worker.sig_words.connect(self._on_words)  # a bound method of the view: delivered in the GUI thread
        self.worker.sig_found.connect(self._on_found)
        self.worker.sig_failed.connect(self.sig_failed)
        self.worker_thread = WorkerThread(self.worker, "docfocus-pdf")
        self.worker_thread.start()
        self.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.horizontalScrollBar().valueChanged.connect(lambda _: self._schedule_render())

    @property
    def words(self):
        """Words of the pages rendered so far, by 0-based page."""
        return self.layout_model.words

    # --- document -------------------------------------------------------------------------
    def open(self, path: str, page: int = 0, password: str | None = None) -> None:
        """Open ``path`` in the background; ``sig_opened`` follows, then the view shows ``page``."""
        self.close_document()  # until it opens, "go to page" requests wait for the new document
        self._pending_page = page
        self.worker.req_open.emit(path, password)

    def set_recognised_words(self, pages: dict) -> None:
        """The OCR words of scanned pages (``{page: [PageWord, ...]}``, app/gui/page_text.py): selection, copy and
        find use them where a page has no text layer. Call after ``open`` (which forgets the old ones)."""
        self.worker.req_recognised_words.emit(pages)

    def close_document(self) -> None:
        self.scene().clear()
        self.pages, self.info = [], None
        self.layout_model.reset()
        self.cache.clear()
        self.find_hits, self.find_index = [], -1

    def shutdown(self) -> None:
        self.worker_thread.shutdown(5000)
        self.worker.close_document()

    def page_count(self) -> int:
        return len(self.pages)

    def _on_opened(self, info: PdfInfo) -> None:
        self.close_document()
        self.info = info
        self.layout_model.reset(info.page_sizes)
        for number, (width, height) in enumerate(info.page_sizes):
            item = PageItem(self, number, width, height)
            item.setPos(*self.layout_model.page_origin(number))
            self.scene().addItem(item)
            self.pages.append(item)
        self.scene().setSceneRect(QRectF(*self.layout_model.scene_rect()))
        self._current_page = -1
        self._apply_fit()
        self.go_to_page(self._pending_page or 0)
        self._pending_page = None
        self.worker.req_thumbnails.emit([(n, self.THUMB_SCALE) for n in range(min(len(self.pages), THUMBNAIL_LIMIT))])
        self.sig_opened.emit(info)
        self._schedule_render()

    # --- rendering --------------------------------------------------------------------------
    def render_scale(self) -> float:
        return round(self.zoom * self.devicePixelRatioF(), 3)

    def _visible_area(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()

    def visible_pages(self) -> list[int]:
        area = self._visible_area()
        return list(self.layout_model.pages_between(area.top(), area.bottom()))

    def _schedule_render(self) -> None:
        if self.pages:
            self._render_timer.start()

    def _request_renders(self) -> None:
        visible = self.visible_pages()
        if not visible:
            return
        first = max(0, visible[0] - RENDER_MARGIN_PAGES)
        last = min(len(self.pages) - 1, visible[-1] + RENDER_MARGIN_PAGES)
        wanted = visible + [n for n in range(first, last + 1) if n not in visible]
        scale = self.render_scale()
        self.worker.req_renders.emit([(n, scale) for n in wanted if self.cache.get(n, scale) is None])

    def _on_rendered(self, page: int, scale: float, image: QImage) -> None:
        if scale == self.THUMB_SCALE:
            self.sig_thumbnail.emit(page, image)
        elif page < len(self.pages):
            self.cache.put(page, scale, QPixmap.fromImage(image))
            self.pages[page].update()

    def _on_words(self, page: int, words: list) -> None:
        self.layout_model.set_words(page, words)

    # --- zoom -------------------------------------------------------------------------------
    def set_zoom(self, zoom: float, fit_mode: str | None = None) -> None:
        """Zoom around the viewport's centre line, keeping the scene x at its left edge (the margin stays)."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        self.fit_mode = fit_mode
        page, offset = self.current_page(), self._center_offset_in_page()
        left = self._visible_area().left()
        self.zoom = zoom
        self.setTransform(QTransform.fromScale(zoom, zoom))
        if self.pages:
            rect = self.pages[page].sceneBoundingRect()
            self.centerOn(QPointF(rect.center().x(), rect.top() + offset))
            bar = self.horizontalScrollBar()
            bar.setValue(bar.value() + round(self.mapFromScene(QPointF(left, 0)).x()))
        self.sig_zoom_changed.emit(zoom, fit_mode or "")
        self._schedule_render()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def fit_width(self) -> None:
        self._fit("width")

    def fit_page(self) -> None:
        self._fit("page")

    def _fit(self, mode: str) -> None:
        """Fit and land at the top of the current page (so Fit page shows all of it)."""
        page = self.current_page()
        self.fit_mode = mode
        self._apply_fit()
        if self.pages:
            self.go_to_page(page)

    def _apply_fit(self) -> None:
        if not self.pages or self.fit_mode is None:
            self.setTransform(QTransform.fromScale(self.zoom, self.zoom))
            return
        width = self.scene().sceneRect().width()  # the widest page plus its margins
        height = self.pages[max(0, self.current_page())].size[1] + PAGE_GAP
        room_w, room_h = max(50, self.viewport().width() - 2), max(50, self.viewport().height() - 2)
        zoom = room_w / width if self.fit_mode == "width" else min(room_w / width, room_h / height)
        self.set_zoom(zoom, self.fit_mode)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.fit_mode:
            self._apply_fit()
        self._schedule_render()

    def changeEvent(self, event) -> None:
        if event.type() == QEvent.Type.PaletteChange:  # light / dark theme
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
        return self.layout_model.page_at(self.mapToScene(self.viewport().rect().center()).y())

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
            visible = self._visible_area()
            self.centerOn(QPointF(visible.center().x(), rect.top() + y + visible.height() / 6))
        self._on_scrolled()

    def _center_offset_in_page(self) -> float:
        if not self.pages:
            return 0.0
        center = self.mapToScene(self.viewport().rect().center())
        return center.y() - self.pages[self.current_page()].sceneBoundingRect().top()

    def _on_scrolled(self, *_) -> None:
        page = self.current_page()
        if page != self._current_page and self.pages:
            self._current_page = page
            self.sig_page_changed.emit(page)
        self._schedule_render()

    def keyPressEvent(self, event) -> None:
        key = event.key()
        moves = {Qt.Key.Key_Home: lambda: 0, Qt.Key.Key_End: lambda: len(self.pages) - 1,
                 Qt.Key.Key_PageDown: lambda: self.current_page() + 1,
                 Qt.Key.Key_PageUp: lambda: self.current_page() - 1}
        if event.matches(QKeySequence.StandardKey.Copy):
            self.copy_selection()
        elif key in moves:
            self.go_to_page(moves[key]())
        else:
            super().keyPressEvent(event)

    # --- find -------------------------------------------------------------------------------
    def find(self, text: str) -> None:
        """Search the whole document in the background; ``sig_find_done(count)`` follows."""
        self._find_generation += 1
        self.worker.req_find.emit(self._find_generation, text)

    def _on_found(self, generation: int, text: str, hits: list) -> None:
        if generation != self._find_generation:
            return  # a newer search is on its way
        shown = self.find_hits[self.find_index] if self.find_index >= 0 else None  # kept when the search is redone
        self._drop_find_hits()
        for page, box in hits:
            if page < len(self.pages):
                rect = box_rect(box)
                self.pages[page].find_hits.append(rect)
                self.find_hits.append((page, rect))
        start = self.current_page()
        if shown in self.find_hits:  # the same search again, with a scan's recognised words: stay on its hit
            self.find_index = self.find_hits.index(shown)
            self.pages[shown[0]].current_hit = shown[1]
        elif self.find_hits:
            self.find_index = next((i for i, (p, _) in enumerate(self.find_hits) if p >= start), 0)
            self._show_hit()
        self.viewport().update()
        self.sig_find_done.emit(len(self.find_hits))

    def find_next(self, step: int = 1) -> None:
        if self.find_hits:
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
        self._drop_find_hits()
        self.viewport().update()

    def _drop_find_hits(self) -> None:
        for item in self.pages:
            item.find_hits, item.current_hit = [], None
        self.find_hits, self.find_index = [], -1

    # --- highlights -------------------------------------------------------------------------
    def set_highlights(self, highlights: list) -> None:
        """Draw exactly these ``engine.answer.result.Highlight``s (1-based page, box in points, weight in (0, 1])."""
        for item in self.pages:
            item.highlights = []
        for light in highlights:
            if 1 <= light.page <= len(self.pages):
                self.pages[light.page - 1].highlights.append((box_rect(light.box), float(light.weight)))
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
        rects = [box_rect(b) for b in boxes]
        self.pages[page].flash_rects = rects
        if rects:
            self.go_to_page(page, (min(r.top() for r in rects) + max(r.bottom() for r in rects)) / 2)
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
    def _word_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not self.pages:
            return None
        page = self.layout_model.page_at(scene_pos.y())
        point = self.pages[page].mapFromScene(scene_pos)
        index = self.layout_model.word_at(page, point.x(), point.y())
        return None if index is None else (page, index)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.pages:
            self._selection_anchor = self._word_at(self.mapToScene(event.position().toPoint()))
            self._set_selection([])
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._selection_anchor is not None and event.buttons() & Qt.MouseButton.LeftButton:
            end = self._word_at(self.mapToScene(event.position().toPoint()))
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
            count = len(self.words.get(page) or [])
            first = start[1] if page == start[0] else 0
            last = end[1] if page == end[0] else count - 1
            selected.extend((page, i) for i in range(first, min(last, count - 1) + 1))
        self._set_selection(selected)

    def _set_selection(self, selected: list[tuple[int, int]]) -> None:
        self._selected = selected
        for item in self.pages:
            item.selection = []
        for page, index in selected:
            word = self.words[page][index]
            self.pages[page].selection.append(box_rect(word[:4]))
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


__all__ = ["PdfView", "PDF_LOCK", "PAGE_GAP"]
