"""Issue 16 in the window: other formats in the open dialog and drag and drop, OCR progress with Cancel, find,
select and copy on scanned pages, the engine's notice instead of the "no text layer" banner, the OCR language.

Every scan is made here (tests/pdfs.py) and recognised for real; each test has its own library, so nothing
recognised by another test is reused."""
from __future__ import annotations

import re

import pymupdf
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QPlainTextEdit

from engine.ingest.extract import OCR_STAGE, file_sha256
from engine.ingest.formats import OPEN_FILTER

import pdfs
from gui_support import drag_words, make_window, qsettings, wait_open  # noqa: F401 (fixtures)

TEXT = [pdfs.PAGE_ONE + pdfs.FILLER, pdfs.FILLER + pdfs.FACT + " The code is changed every year."]


@pytest.fixture()
def scan_engine(tiny_model_dir, tmp_path):
    """The tiny model with a library of its own: every scan in a test is recognised in that test."""
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 8}),
                    library=Library(tmp_path / "library.sqlite"))
    engine.load()
    return engine


def open_and_wait(qtbot, window, path, timeout: int = 120_000) -> None:
    with qtbot.waitSignal(window.sig_document_ready, timeout=timeout):
        window.open_pdf(path)


def find(qtbot, window, text: str) -> int:
    with qtbot.waitSignal(window.view.sig_find_done, timeout=10_000) as blocker:
        window.view.find(text)
    return blocker.args[0]


def test_open_dialog_offers_every_format_and_the_wording_says_document(qtbot, make_window, tmp_path, monkeypatch):
    from app.gui import main_window

    book = pdfs.epub_file(tmp_path / "harbour.epub", ["The harbour master keeps the keys of the lighthouse."])
    window = make_window()
    shown = [w.text() for w in window.findChildren(QLabel) + window.findChildren(QAbstractButton)]
    shown += [w.placeholderText() for w in window.findChildren(QLineEdit) + window.findChildren(QPlainTextEdit)]
    shown += [action.toolTip() for action in window.actions()]
    assert "Open a document…  (Ctrl+O)" in shown and "Open a document first, then ask about it here…" in shown
    assert not [text for text in shown if "a PDF" in text]
    assert any("EPUB" in text and "scanned image" in text for text in shown)  # the start screen names the formats
    seen = {}

    def the_dialog(parent, title, start, filters):  # Qt's own dialog: what it was asked to show, the user's pick
        seen.update(parent=parent, title=title, filters=filters)
        return str(book), filters.split(";;")[0]

    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName", staticmethod(the_dialog))
    window.open_action.trigger()
    assert seen["parent"] is window and seen["title"] == "Open a document" and seen["filters"] == OPEN_FILTER
    assert any(".epub" in f and ".cbz" in f and ".png" in f and ".pdf" in f for f in OPEN_FILTER.split(";;"))
    wait_open(qtbot, window, 1)
    assert window.windowTitle().endswith("Harbour notes")


def test_drag_and_drop_takes_every_format_docfocus_reads(qtbot, make_window, tmp_path):
    window = make_window()
    notes = tmp_path / "notes.txt"
    notes.write_text("The ferry leaves at nine.\n" * 40, encoding="utf-8")

    def mime(path) -> QMimeData:
        data = QMimeData()
        data.setUrls([QUrl.fromLocalFile(str(path))])
        return data

    for name, accepted in [("book.EPUB", True), ("comic.cbz", True), ("page.png", True), ("paper.oxps", True),
                           ("notes.txt", True), ("report.pdf", True), ("letter.docx", False), ("song.mp3", False)]:
        data = mime(tmp_path / name)  # kept: the event does not own it
        event = QDragEnterEvent(QPoint(100, 100), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier)
        event.ignore()
        window.dragEnterEvent(event)
        assert event.isAccepted() is accepted, name
    data = mime(notes)
    drop = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    wait_open(qtbot, window)
    assert window.windowTitle().endswith("notes") and window.view.page_count() >= 1
    qtbot.waitUntil(lambda: 0 in window.view.words, timeout=10_000)  # laid out on pages, words and all
    assert [w.text for w in window.view.words[0][:3]] == ["The", "ferry", "leaves"]


def test_recognising_a_scan_shows_progress_time_left_and_cancel_and_resumes(qtbot, make_window, scan_engine,
                                                                            tmp_path):
    pages = [pdfs.PAGE_ONE + pdfs.FILLER, pdfs.FILLER + pdfs.FACT, pdfs.PAGE_THREE + pdfs.FILLER,
             pdfs.FILLER * 2, pdfs.PAGE_ONE * 2]
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", pages, dpi=150)
    window = make_window(engine=scan_engine, auto_prepare=True)
    status, view = window.status_progress, window.view
    window.open_pdf(path)
    qtbot.waitUntil(lambda: status.last_progress[0] == OCR_STAGE and status.last_progress[1] >= 1, timeout=60_000)
    assert window.activity.text() == OCR_STAGE
    assert window.progress.isVisible() and window.progress.maximum() == 5 and window.cancel_button.isVisible()
    assert window.eta.text().endswith("left")  # the time left, from the pages done so far
    # The view keeps drawing while pages are recognised: the engine holds the viewer's lock only for PyMuPDF.
    window.zoom_in_action.trigger()
    qtbot.waitUntil(lambda: all(view.cache.get(p, view.render_scale()) for p in view.visible_pages()),
                    timeout=30_000)
    assert status.last_progress[0] == OCR_STAGE and status.last_progress[1] < 5  # still recognising
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.activity.text().startswith("Recognition cancelled"), timeout=60_000)
    done = int(re.match(r"Recognition cancelled after (\d) of 5 scanned pages: those are kept",
                        window.activity.text()).group(1))
    assert 1 <= done < 5 and window.handle is None and "error" not in window.banners.texts()
    sha = file_sha256(path)
    assert all(scan_engine.library.get_ocr(sha, page, "auto") is not None for page in range(done))
    assert scan_engine.library.get_ocr(sha, 4, "auto") is None
    # A question goes on from there and reads the rest.
    with qtbot.waitSignal(window.sig_document_ready, timeout=120_000):
        window.ask("What is the launch code?")
    assert "recognised the text of all 5 pages" in window.banners.texts()["reading"]


def test_find_select_and_copy_work_on_scanned_pages(qtbot, make_window, scan_engine, tmp_path):
    born = pdfs.paragraphs_pdf(tmp_path / "born.pdf", TEXT)
    with pymupdf.open(born) as source:
        path = pdfs.scanned_pdf_of(source, tmp_path / "scan.pdf", dpi=200, noise=6.0)  # unturned: same place
        printed = source[1].search_for("launch code")
        first_line = [w[4] for w in source[0].get_text("words") if w[6] == 0 and w[5] == 0]
    window = make_window(engine=scan_engine, auto_prepare=True)
    open_and_wait(qtbot, window, path)
    view = window.view
    qtbot.waitUntil(lambda: len(view.words.get(0) or []) > 20, timeout=10_000)
    words = view.words[0]
    assert [w.text for w in words[:3]] == ["The", "observatory", "stands"]
    drag_words(view, 0, 0, 2)
    assert view.selected_text() == "The observatory stands" and len(view.pages[0].selection) == 3
    QGuiApplication.clipboard().clear()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == "The observatory stands"
    view.select_words((0, 0), (0, len(first_line)))  # the scan's first line and the next word: a line break
    assert view.selected_text().split("\n")[0] == " ".join(first_line)
    # Find searches the recognised words (PyMuPDF's search_for finds nothing on a scan).
    assert find(qtbot, window, "LAUNCH   code") == len(printed) == 1
    page, hit = view.find_hits[0]
    assert page == 1 and view.current_page() == 1
    for got, want in zip((hit.left(), hit.top(), hit.right(), hit.bottom()), printed[0]):
        assert got == pytest.approx(want, abs=4.0)  # where "launch code" is printed
    assert find(qtbot, window, "observatory") == 2  # page 1 and page 2
    assert find(qtbot, window, "servat") == 2  # inside a word too, as PyMuPDF finds it


def test_a_scan_gets_the_engines_notice_not_the_no_text_layer_banner(qtbot, make_window, scan_engine, tmp_path):
    window = make_window(engine=scan_engine, auto_prepare=True)
    open_and_wait(qtbot, window, pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi=150))
    texts = window.banners.texts()
    assert texts["reading"].startswith("This document is a scan: DocFocus recognised the text of all 2 pages (OCR)")
    assert "average confidence" in texts["reading"] and "no text layer" not in " ".join(texts.values())
    assert window.banners._banners["reading"].kind == "info"
    assert "OCR" in window.banners._banners["reading"].toolTip()
    # A comic (CBZ): image pages, read the same way.
    comic = pdfs.cbz_file(tmp_path / "comic.cbz", ["The lighthouse keeper rings the bell at dawn."])
    open_and_wait(qtbot, window, comic)
    assert "recognised the text of its page" in window.banners.texts()["reading"]
    assert find(qtbot, window, "lighthouse keeper") == 1


def test_scans_that_cannot_be_recognised_show_the_engines_message(qtbot, make_window, scan_engine, tmp_path,
                                                                 monkeypatch):
    (tmp_path / "no-models").mkdir()
    monkeypatch.setenv("DOCFOCUS_OCR_MODELS", str(tmp_path / "no-models"))
    window = make_window(engine=scan_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_error_shown, timeout=60_000) as blocker:
        window.open_pdf(pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT[:1], dpi=150))
    message = window.banners.texts()["error"]
    assert blocker.args[0] == "open" and message == blocker.args[1]
    assert "could not be recognised" in message and "pip install --no-deps rapidocr" in message
    assert window.activity.text() == "Error"
    # A mixed document is read; the page that could not be recognised is named in a warning.
    with pymupdf.open(pdfs.fact_pdf(tmp_path / "born.pdf")) as source:
        mixed = pdfs.scanned_pdf_of(source, tmp_path / "mixed.pdf", dpi=150, pages=[1])
    open_and_wait(qtbot, window, mixed)
    banner = window.banners._banners["reading"]
    assert banner.kind == "warning" and "page 2 could not be recognised" in banner.text()
    # A page with neither text nor a page-sized scan: the engine says so.
    with qtbot.waitSignal(window.sig_error_shown, timeout=60_000):
        window.open_pdf(pdfs.scanned_pdf(tmp_path / "blank.pdf"))
    assert "has no text layer" in window.banners.texts()["error"]


def test_the_ocr_language_setting_reads_a_scan_again(qtbot, make_window, scan_engine, qsettings, tmp_path):
    from PySide6.QtCore import QSettings

    from app.gui.settings import load_engine_settings
    from engine.settings import OPTION

    source = pymupdf.open()
    page = source.new_page(width=595, height=842)
    page.insert_text((72, 120), "北京大学图书馆", fontname="china-s", fontsize=20)
    page.insert_text((250, 120), "Library 2024", fontsize=20)
    path = pdfs.scanned_pdf_of(source, tmp_path / "cjk.pdf", dpi=300)
    window = make_window(engine=scan_engine, auto_prepare=True)
    open_and_wait(qtbot, window, path)
    assert find(qtbot, window, "北京") == 1 and find(qtbot, window, "Library") == 1
    dialog = window.show_settings()
    editor = dialog.editors["ocr_language"]
    assert not dialog.advanced.isAncestorOf(editor)  # with the everyday settings
    form = dialog.layout().itemAt(0).layout()
    assert form.labelForField(editor).text() == OPTION["ocr_language"].label == "Language of scanned pages"
    choices = OPTION["ocr_language"].choice_list()
    assert [(editor.itemData(i), editor.itemText(i)) for i in range(editor.count())] == [(c.value, c.label)
                                                                                         for c in choices]
    editor.setCurrentIndex(editor.findData("latin"))
    dialog.accept()
    assert window.engine_settings.ocr_language == "latin"
    assert load_engine_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat)).ocr_language == "latin"
    with qtbot.waitSignal(window.sig_document_ready, timeout=120_000):
        window.prepare()  # what the next question does
    assert find(qtbot, window, "北京") == 0 and find(qtbot, window, "Library") == 1
    assert not any("\u3400" <= c <= "\u9fff" for w in window.view.words[0] for c in w.text)


def test_recognised_words_keep_their_lines_and_find_marks_only_the_matching_part():
    from app.gui.page_text import find_in_words, recognised_page_words
    from engine.ingest.extract import IngestedDocument, Page, Word
    from engine.ingest.report import IngestReport, OcrSummary

    # Page 2 of a document as the engine gives it: words with boxes and char spans, the text between them saying
    # "same line" (a space), "new line" ("\n") or "new block" ("\n\n"). Page 1 has no words.
    text = "\n\nLaunch code\n4417.\n\nKeeper"
    boxes = [(10, 10, 50, 20), (55, 10, 80, 20), (10, 30, 40, 40), (10, 60, 60, 70)]
    words, at = [], 0
    for box, word in zip(boxes, ["Launch", "code", "4417.", "Keeper"]):
        at = text.index(word, at)
        words.append(Word(1, *box, word, at, at + len(word)))
    pages = [Page(0, 595, 842, 0, 0), Page(1, 595, 842, 2, len(text))]
    report = IngestReport(ocr=OcrSummary(pages=[1], words=4, confidence=0.99), pages=2)
    recognised = recognised_page_words(IngestedDocument("sha", "scan.pdf", "Scan", pages, words, text, report))
    assert list(recognised) == [1]  # only the page read by OCR
    got = recognised[1]
    assert [(w.text, w.block, w.line) for w in got] == [("Launch", 0, 0), ("code", 0, 0), ("4417.", 0, 1),
                                                         ("Keeper", 1, 0)]
    assert find_in_words(got, "launch CODE") == [(10, 10, 80, 20)]  # one line: one box over both words
    assert find_in_words(got, "code 4417") == [(55, 10, 80, 20), (10, 30, 34.0, 40)]  # two lines, part of "4417."
    assert find_in_words(got, "unch") == [(pytest.approx(10 + 40 * 2 / 6), 10, 50, 20)]  # its share of the box
    assert find_in_words(got, "  ") == [] and find_in_words(got, "zeppelin") == []
