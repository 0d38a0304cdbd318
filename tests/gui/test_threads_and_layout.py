"""Issue 11's GUI part: the page-layout model, one worker pattern, and PDF_LOCK held only while parsing."""
from __future__ import annotations

import threading

from app.gui.page_layout import PAGE_GAP, PageLayout, PageWord

from gui_support import book, gui_engine, make_window, qsettings, wait_open  # noqa: F401 (fixtures)


def test_page_layout_finds_pages_by_height():
    layout = PageLayout([(600, 800), (500, 400), (600, 800)])
    assert layout.tops == [0.0, 800 + PAGE_GAP, 1200 + 2 * PAGE_GAP]
    assert layout.page_origin(1) == (50.0, 800 + PAGE_GAP)  # narrower pages are centred
    assert [layout.page_at(y) for y in (-50, 0, 799, 805, 812, 1211, 1225, 99_999)] == [0, 0, 0, 0, 1, 1, 2, 2]
    assert list(layout.pages_between(790, 820)) == [0, 1]
    assert list(layout.pages_between(801, 811)) == []  # only the gap
    assert list(layout.pages_between(5000, 6000)) == []


def test_page_layout_finds_the_word_at_a_point():
    layout = PageLayout([(600, 800)])
    assert layout.word_at(0, 10, 10) is None  # no words yet
    words = [PageWord(72 + 40 * (i % 10), 100 + 20 * (i // 10), 100 + 40 * (i % 10), 112 + 20 * (i // 10),
                      f"w{i}", 0, i // 10) for i in range(200)]
    layout.set_words(0, words)
    assert layout.word_at(0, 80, 105) == 0
    assert layout.word_at(0, 195, 285, nearest=False) == 93  # line 9, fourth word
    assert layout.word_at(0, 590, 106) == 9  # nearest on the same line
    assert layout.word_at(0, 590, 106, nearest=False) is None
    two_columns = [PageWord(300, 100, 340, 112, "right", 1, 0), PageWord(72, 300, 110, 312, "left-low", 0, 1)]
    layout.set_words(0, two_columns[::-1] + two_columns)  # reading order that jumps back up
    assert layout.word_at(0, 305, 104) in (1, 2)


def test_pdf_worker_is_a_worker_object_in_its_own_thread(qtbot, make_window, book):
    from PySide6.QtCore import QThread

    window = make_window()
    worker = window.view.worker
    assert not isinstance(worker, QThread) and worker.thread() is window.view.worker_thread
    assert worker.thread() is not window.thread() and window.view.worker_thread.isRunning()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.close()
    assert not window.view.worker_thread.isRunning() and not window.engine_thread.isRunning()


def test_the_engine_thread_does_not_hold_the_pdf_lock_while_it_lays_out_a_document(
        qtbot, make_window, gui_engine, fact_pdf, monkeypatch):
    from app.gui.pdf_worker import PDF_LOCK

    free_during_layout = []
    layout_document = gui_engine.open_document

    def try_the_lock() -> None:
        acquired = PDF_LOCK.acquire(timeout=2)
        free_during_layout.append(acquired)
        if acquired:
            PDF_LOCK.release()

    def open_document(source, *args, **kwargs):
        # Tokenizing happens here: the reader's thread must be able to render meanwhile.
        probe = threading.Thread(target=try_the_lock)
        probe.start()
        probe.join()
        return layout_document(source, *args, **kwargs)

    monkeypatch.setattr(gui_engine, "open_document", open_document)
    window = make_window(engine=gui_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.open_pdf(fact_pdf)
    assert free_during_layout == [True]
