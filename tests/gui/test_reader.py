"""The reader on a generated 30-page book: open, scroll, zoom, keys, find, outline, selection, cache bound."""
from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QGuiApplication, QPixmap

from gui_support import NEEDLE, NEEDLE_PAGES, book, make_window, qsettings, wait_open  # noqa: F401 (fixtures)


def test_open_shows_title_pages_and_renders_visible_pages(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    assert window.windowTitle() == "DocFocus — The Test Book"
    assert window.page_total.text().strip() == "/ 30"
    view = window.view
    qtbot.waitUntil(lambda: all(view.cache.get(p, view.render_scale()) for p in view.visible_pages()), timeout=10_000)
    # Only pages near the viewport are rendered, not the whole book.
    assert 0 < len(view.cache) <= len(view.visible_pages()) + 2


def test_scroll_keys_and_page_box(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    view = window.view
    view.go_to_page(10)
    assert view.current_page() == 10
    assert window.page_box.value() == 11
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.current_page() == 29
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.current_page() == 0
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.current_page() == 2
    qtbot.keyClick(view, Qt.Key.Key_PageUp)
    assert view.current_page() == 1
    window.page_box.setValue(20)  # "go to page"
    assert view.current_page() == 19
    # Scrolling with the scroll bar renders the newly visible pages.
    view.verticalScrollBar().setValue(view.verticalScrollBar().maximum() // 2)
    middle = view.current_page()
    assert 10 <= middle <= 20
    qtbot.waitUntil(lambda: view.cache.get(middle, view.render_scale()) is not None, timeout=10_000)


def test_zoom_keeps_page_and_renders_at_new_scale(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    view = window.view
    view.go_to_page(5)
    before = view.zoom
    window.zoom_in_action.trigger()
    assert view.zoom > before
    assert view.current_page() == 5
    assert window.zoom_label.text() == f"{view.zoom * 100:.0f}%"
    qtbot.waitUntil(lambda: view.cache.get(5, view.render_scale()) is not None, timeout=10_000)
    window.zoom_out_action.trigger()
    window.zoom_out_action.trigger()
    assert view.zoom < before
    view.fit_page()
    page = view.pages[view.current_page()].sceneBoundingRect()
    shown = view.mapFromScene(page).boundingRect()
    assert shown.height() <= view.viewport().height()
    view.fit_width()
    assert abs(view.mapFromScene(page).boundingRect().width() - view.viewport().width()) < 0.1 * view.viewport().width()


def test_render_cache_is_bounded():
    from app.gui.pdf_view import RenderCache

    cache = RenderCache(cap_bytes=3 * 100 * 100 * 4)
    for page in range(10):
        cache.put(page, 1.0, QPixmap(100, 100))
    assert len(cache) == 3 and cache.bytes <= cache.cap_bytes
    assert cache.get(9, 1.0) is not None and cache.get(0, 1.0) is None


def test_find_counts_hits_and_f3_cycles(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.find_action.trigger()
    assert window.find_bar.isVisible()
    qtbot.keyClicks(window.find_bar.edit, NEEDLE)
    with qtbot.waitSignal(window.view.sig_find_done, timeout=10_000) as blocker:
        qtbot.keyClick(window.find_bar.edit, Qt.Key.Key_Return)
    assert blocker.args == [len(NEEDLE_PAGES)]
    assert "of 4" in window.find_bar.count.text()
    pages = [page for page, _ in window.view.find_hits]
    assert pages == sorted(NEEDLE_PAGES)
    assert window.view.current_page() == 3  # the first hit is shown
    window.find_next_action.trigger()  # F3
    assert window.view.current_page() == 17
    assert window.find_bar.count.text() == "2 of 4"
    window.find_prev_action.trigger()  # Shift+F3
    window.find_prev_action.trigger()
    assert window.view.current_page() == 25  # wraps around
    painted = window.view.pages[25].find_hits
    assert len(painted) == 1 and window.view.pages[25].current_hit == painted[0]


def test_outline_and_thumbnails_jump(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    outline = window.side.outline
    assert outline.topLevelItemCount() == 6
    chapter3 = outline.topLevelItem(2)
    assert chapter3.text(0) == "Chapter 3" and chapter3.child(0).text(0) == "Section 3.1"
    rect = outline.visualItemRect(chapter3)
    qtbot.mouseClick(outline.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert window.view.current_page() == 10
    outline.itemClicked.emit(chapter3.child(0), 0)
    assert window.view.current_page() == 12
    thumbs = window.side.thumbnails
    assert thumbs.count() == 30
    thumbs.itemClicked.emit(thumbs.item(27))
    assert window.view.current_page() == 27


def test_select_text_and_copy(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    view = window.view
    qtbot.waitUntil(lambda: 0 in view.words, timeout=10_000)
    words = view.words[0]
    assert [w.text for w in words[:4]] == ["Chapter", "1", "page", "1"]
    # Drag with the mouse from the first word to the third.
    start = view.mapFromScene(view.pages[0].mapToScene(QPointF((words[0].x0 + words[0].x1) / 2,
                                                               (words[0].y0 + words[0].y1) / 2)))
    end = view.mapFromScene(view.pages[0].mapToScene(QPointF((words[2].x0 + words[2].x1) / 2,
                                                             (words[2].y0 + words[2].y1) / 2)))
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent

    def send(kind, pos, buttons):
        event = QMouseEvent(kind, QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), Qt.MouseButton.LeftButton,
                            buttons, Qt.KeyboardModifier.NoModifier)
        QGuiApplication.sendEvent(view.viewport(), event)

    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseMove, end, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
    assert view.selected_text() == "Chapter 1 page"
    assert len(view.pages[0].selection) == 3
    QGuiApplication.clipboard().clear()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "Chapter 1 page"
    # Across lines: the next line starts on a new line of the copied text.
    view.select_words((0, 2), (0, 6))
    assert view.selected_text().split("\n")[0] == "page 1"


def test_drop_a_pdf_opens_it(qtbot, make_window, book):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(book))])
    event = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    wait_open(qtbot, window, 30)
    assert window.windowTitle().endswith("The Test Book")


def test_broken_pdf_shows_error_banner_and_window_stays_usable(qtbot, make_window, tmp_path, book):
    import pdfs

    window = make_window()
    window.open_pdf(pdfs.corrupt_pdf(tmp_path / "broken.pdf"))
    qtbot.waitUntil(lambda: "error" in window.banners.texts(), timeout=10_000)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    assert window.windowTitle().endswith("The Test Book")


def test_scrolling_a_100_page_book_renders_only_near_pages_and_stays_bounded(qtbot, make_window, tmp_path):
    from gui_support import Recorder, book_pdf

    window = make_window()
    view = window.view
    view.cache.cap_bytes = 40 * 1024**2
    renders = Recorder(view.worker.sig_rendered)
    window.open_pdf(book_pdf(tmp_path / "long.pdf", pages=100))
    wait_open(qtbot, window, 100)
    bar = view.verticalScrollBar()
    for step in range(0, 101, 5):  # a fast scroll from top to bottom
        bar.setValue(bar.maximum() * step // 100)
        qtbot.wait(5)
    last = view.visible_pages()
    qtbot.waitUntil(lambda: all(view.cache.get(p, view.render_scale()) for p in last), timeout=20_000)
    assert view.current_page() >= 98
    assert view.cache.bytes <= view.cache.cap_bytes
    # Renders of pages that scrolled out of view before their turn were dropped.
    rendered = {page for page, scale, _ in renders.calls if scale != view.THUMB_SCALE}
    assert 1 <= len(view.cache) < 30 and len(rendered) < 50
