"""Issue 13 items 11-15 on real widgets: Clear chat with Undo, empty states, plain words, viewer details, theme."""
from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from PySide6.QtCore import Qt

from gui_support import book, book_pdf, gui_engine, make_window, qsettings, streaming_engine, wait_open  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def open_and_read(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.open_pdf(path)
    qtbot.waitUntil(lambda: window.activity.text() == "Ready", timeout=60_000)


def test_clear_chat_can_be_undone_and_deletes_the_history_only_after(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_read(qtbot, window, fact_pdf)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000):
        window.ask("What is the code?")
    sha = window.sha256
    qtbot.waitUntil(lambda: len(gui_engine.history(sha)) >= 1, timeout=10_000)
    count = len(window.chat.cards)
    window.chat.clear_button.click()
    assert not window.chat.cards and window.chat.undo_bar.isVisible()
    qtbot.wait(200)
    assert len(gui_engine.history(sha)) >= 1  # nothing deleted yet
    window.chat.undo_bar.undo_button.click()
    assert len(window.chat.cards) == count and not window.chat.undo_bar.isVisible()
    window.chat.undo_timer.setInterval(100)
    window.chat.clear_button.click()
    qtbot.waitUntil(lambda: gui_engine.history(sha) == [], timeout=10_000)
    assert not window.chat.undo_bar.isVisible()


def test_start_screen_without_a_document_keeps_the_question(qtbot, make_window, book):
    window = make_window()
    assert window.reader.currentWidget() is window.start_screen and window.start_screen.isVisible()
    assert window.page_total.text().strip() == "–" and not window.page_box.isEnabled()
    assert "/ 0" not in window.page_total.text() and not window.zoom_in_action.isEnabled()
    assert "Open a document" in window.chat.question.placeholderText()
    qtbot.keyClicks(window.chat.question, "What is this about?")
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    assert window.chat.question.toPlainText() == "What is this about?"  # not thrown away
    assert not window.chat.cards and "Open a document first" in window.banners.texts()["error"]
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    assert window.reader.currentWidget() is window.view
    assert window.page_total.text().strip() == "/ 30" and window.page_box.isEnabled()
    assert window.chat.question.placeholderText() == "Ask about The Test Book…"
    assert "Open a document" not in window.chat.placeholder.text()


def test_start_screen_lists_recent_documents_and_opens_them(qtbot, qsettings, tmp_path, tiny_model_dir):
    from app.gui.main_window import MainWindow
    from engine.api import Engine, EngineSettings
    from engine.ingest.extract import ingest_pdf
    from engine.library.documents import Library

    path = book_pdf(tmp_path / "recent.pdf", pages=3)
    library = Library(tmp_path / "library.sqlite")
    document = ingest_pdf(path)
    library.save(document)
    library.touch(document.sha256, str(path))
    window = MainWindow(settings=qsettings, engine=Engine(EngineSettings(model=str(tiny_model_dir)), library=library),
                        auto_prepare=False)
    qtbot.addWidget(window)
    window.show()
    recent = window.start_screen.recent
    qtbot.waitUntil(lambda: recent.count() == 1, timeout=10_000)
    assert recent.item(0).text() == "The Test Book" and window.start_screen.open_button.isVisible()
    recent.itemClicked.emit(recent.item(0))
    wait_open(qtbot, window, 3)
    assert window.reader.currentWidget() is window.view
    window.close()


def test_stop_and_cancel_act_at_once_in_every_phase_and_focus_the_question(qtbot, make_window, streaming_engine,
                                                                         tmp_path):
    import pdfs

    path = pdfs.paragraphs_pdf(tmp_path / "phases.pdf", [pdfs.FILLER * 3 + str(tmp_path)] * 2)
    window = make_window(engine=streaming_engine, auto_prepare=False)
    window.open_pdf(path)
    wait_open(qtbot, window, 2)
    # 1. Asked before the document is read: Stop is live while the model loads and the document is read.
    window.ask("Where is it?")
    card = window.chat.current
    assert window.chat.stop_button.isEnabled()
    window.page_box.setFocus()
    qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
    assert card.answer_label.text() == "Stopped before the answer began."
    assert window.chat.send_button.isEnabled() and window.chat.question.hasFocus()
    qtbot.waitUntil(lambda: window.handle is not None, timeout=60_000)  # the reading itself goes on
    # 2. Cancel in the status bar while the model/document work runs, before the first word.
    window.ask("And now?")
    card = window.chat.current
    window.page_box.setFocus()
    window.cancel()
    assert card.answer_label.text() == "Stopped before the answer began." and window.chat.question.hasFocus()
    qtbot.waitUntil(lambda: window.activity.text() in ("Ready", "Cancelling…") or "cancel" in
                    window.activity.text().lower(), timeout=30_000)
    assert card.answer_label.text() == "Stopped before the answer began."  # a late result does not undo it
    # 3. While the answer streams.
    window.ask("Once more?")
    card = window.chat.current
    qtbot.waitUntil(lambda: len(card.streamed) > 20, timeout=60_000)
    window.page_box.setFocus()
    with qtbot.waitSignal(window.sig_answer_shown, timeout=10_000) as blocker:
        qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
        assert card.answer_label.text().endswith("[stopped]") and window.chat.question.hasFocus()
    assert blocker.args[0]["stopped"] and not window.chat.busy


def test_cancelled_reading_says_so_and_drops_the_read_all_banner(qtbot, make_window, gui_engine, tmp_path):

    import pdfs

    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 8 + str(tmp_path)] * 12, title="Long")
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_read(qtbot, window, path)
    assert window.banners.texts()["window"].startswith("Reads all 12 pages")
    window.apply_settings(window.engine_settings.changed(answer={"max_new_tokens": window.engine_settings.answer.max_new_tokens + 1}))
    window.ask("Which committee?")  # reads the document again with the new settings...
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)  # ...until Cancel
    qtbot.waitUntil(lambda: window.activity.text().startswith("Reading cancelled"), timeout=30_000)
    assert "window" not in window.banners.texts()
    assert window.chat.question.hasFocus()
    window.apply_settings(window.engine_settings.changed(answer={"max_new_tokens": window.engine_settings.answer.max_new_tokens - 1}))


def test_no_jargon_in_the_window(qtbot, make_window, gui_engine, tmp_path):
    import pdfs

    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 8] * 12, title="Long")
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_read(qtbot, window, path)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000):
        window.ask("Which committee met?")
    card = window.chat.cards[-1]
    shown = " ".join([card.meta_label.text(), window.attention_label.text(), *window.banners.texts().values()])
    for word in ("dga", "DGA-select", "tokens", "segments", "γ", "attention:"):
        assert word not in shown, word
    assert "tokens" in card.meta_label.toolTip() and "tokens" in window.attention_label.toolTip()  # the detail
    dialog = window.show_settings()
    basic = [dialog.layout().itemAt(0).layout().itemAt(i, dialog.layout().itemAt(0).layout().ItemRole.LabelRole)
             for i in range(dialog.layout().itemAt(0).layout().rowCount())]
    labels = [item.widget().text() for item in basic if item is not None and item.widget() is not None]
    assert labels and not any("gamma" in label.lower() or "cap" in label.lower() for label in labels)
    assert dialog.advanced.isAncestorOf(dialog.editors["gamma"])
    dialog.reject()


def test_fit_page_fit_width_and_zoom_keep_the_page_in_view(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    view = window.view
    view.go_to_page(5)
    view.verticalScrollBar().setValue(view.verticalScrollBar().value() + 300)  # mid-page
    window.fit_page_action.trigger()
    page = view.mapFromScene(view.pages[view.current_page()].sceneBoundingRect()).boundingRect()
    assert view.viewport().rect().contains(page), (page, view.viewport().rect())
    view.verticalScrollBar().setValue(view.verticalScrollBar().value() + 200)
    window.fit_width_action.trigger()
    top = view.mapFromScene(view.pages[view.current_page()].sceneBoundingRect().topLeft())
    assert 0 <= top.y() <= 12  # at the page's top, not mid-page
    for _ in range(3):
        window.zoom_in_action.trigger()
    left = view.mapFromScene(view.pages[view.current_page()].sceneBoundingRect().topLeft())
    assert left.x() >= 0  # the left margin stays in view


def test_zoom_is_restored_when_a_document_is_reopened(qtbot, make_window, book, tmp_path):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    qtbot.waitUntil(lambda: window.sha256 is not None, timeout=10_000)
    window.fit_page_action.trigger()
    window.zoom_in_action.trigger()
    zoom = window.view.zoom
    window.open_pdf(book_pdf(tmp_path / "other.pdf", pages=2))
    wait_open(qtbot, window, 2)
    qtbot.waitUntil(lambda: window.sha256 is not None, timeout=10_000)
    window.fit_width_action.trigger()  # another zoom for the other document
    assert window.view.zoom != pytest.approx(zoom)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    qtbot.waitUntil(lambda: window.view.zoom == pytest.approx(zoom), timeout=10_000)
    assert window.view.fit_mode is None


def test_thumbnails_follow_scrolling_and_outline_states(qtbot, make_window, book, tmp_path):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.view.go_to_page(12)
    assert window.side.thumbnails.currentRow() == 12
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    assert window.side.thumbnails.currentRow() == 13
    title = "Chapter 1 " + "with a title far too long for the narrow side panel " * 2
    document = pymupdf.open()
    for _ in range(2):
        document.new_page()
    document.set_toc([[1, title, 2]])
    document.save(tmp_path / "long-title.pdf")
    window.open_pdf(tmp_path / "long-title.pdf")
    wait_open(qtbot, window, 2)
    assert window.side.outline.topLevelItem(0).toolTip(0).startswith(title)
    window.open_pdf(book_pdf(tmp_path / "plain.pdf", pages=2).with_name("plain.pdf"))
    bare = pymupdf.open()
    bare.new_page()
    bare.save(tmp_path / "bare.pdf")
    window.open_pdf(tmp_path / "bare.pdf")
    wait_open(qtbot, window, 1)
    assert window.side.outline.topLevelItem(0).text(0) == "This document has no outline"


def test_find_hits_are_not_relevance_orange_and_tooltips_name_shortcuts(qtbot, make_window):
    from app.gui.page_item import FIND_COLOR, FIND_CURRENT_COLOR, highlight_color

    window = make_window()
    orange = highlight_color(1.0).hueF()
    for color in (FIND_COLOR, FIND_CURRENT_COLOR):
        distance = abs(color.hueF() - orange)
        assert min(distance, 1 - distance) > 0.2
    assert "Ctrl+=" in window.zoom_in_action.toolTip() and "Ctrl+2" in window.fit_width_action.toolTip()
    assert "Ctrl+1" in window.fit_page_action.toolTip()


def test_view_theme_is_chosen_remembered_and_documented(qtbot, make_window, qsettings):
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    window = make_window()
    try:
        window.theme_actions["dark"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        again = make_window(settings=QSettings(qsettings.fileName(), QSettings.Format.IniFormat))
        assert again.theme_actions["dark"].isChecked()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        again.theme_actions["light"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 150
    finally:
        window.set_theme("system")
    readme = (ROOT / "README.md").read_text()
    assert "View > Theme" in readme and "dark" in readme.split("View > Theme", 1)[1][:200]
