"""The library in the window (issue 15): the panel, background reading, the scope switch, citations across
documents, the queue after a restart. Real widgets, a real engine on the tiny random model, real PDFs and a
fresh data folder per test."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QObject, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from app.gui.library_controller import LibraryController
from app.gui.library_panel import STATE, TITLE
from engine.api import Engine, EngineSettings
from engine.library.documents import Library
from engine.library.queue import LibraryQueue

import pdfs
from gui_support import make_window, qsettings, wait_open  # noqa: F401 (fixtures)

WAIT = 60_000  # the longest a step may take before the test fails (not a timing assertion)
QUESTION = "What is the secret launch code of the observatory?"


def new_engine(model_dir: Path, data: Path) -> Engine:
    data.mkdir(exist_ok=True)
    engine = Engine(EngineSettings(model=str(model_dir), device="cpu").changed(answer={"max_new_tokens": 8}),
                    library=Library(data / "library.sqlite"))
    engine.load()
    return engine


def shelf(folder: Path) -> Path:
    """Two documents: the observatory's fact on page 2 of one, a harbour guide of four pages."""
    folder.mkdir(exist_ok=True)
    pdfs.fact_pdf(folder / "notes.pdf")
    pdfs.paragraphs_pdf(folder / "harbour.pdf", [pdfs.FILLER + f"The harbour ferry leaves pier {n} at nine."
                                                 for n in range(4)], title="Harbour guide")
    (folder / "readme.xyz").write_text("not a document")
    return folder


class Snapshots(QObject):
    """The panel's state words after each list the worker sends (connected after the controller, so the
    panel has already shown it)."""

    def __init__(self, window) -> None:
        super().__init__()
        self.panel = window.library.panel
        self.seen: list[dict[str, str]] = []
        window.library.worker.sig_documents.connect(self.record)

    def record(self, _documents) -> None:
        panel = self.panel
        self.seen.append({panel.items[i].text(TITLE): panel.state_of(i) for i in panel.items})


def states(window) -> dict[str, str]:
    panel = window.library.panel
    return {panel.items[i].text(TITLE): panel.state_of(i) for i in panel.items}


def wait_ready(qtbot, window, count: int) -> None:
    qtbot.waitUntil(lambda: len(states(window)) == count and all(
        s in ("Ready", "Couldn't read") for s in states(window).values()), timeout=WAIT)


@pytest.fixture()
def engine(tiny_model_dir, tmp_path):
    return new_engine(tiny_model_dir, tmp_path / "data")


def test_adding_a_folder_lists_its_documents_queued_then_ready(qtbot, make_window, engine, tmp_path):
    window = make_window(engine)
    window.side.setCurrentWidget(window.library.panel)
    assert window.side.tabText(window.side.currentIndex()) == "Library"
    assert window.library.panel.hint.isVisible()
    snapshots = Snapshots(window)
    window.library.panel.sig_add.emit([str(shelf(tmp_path / "shelf"))])
    wait_ready(qtbot, window, 2)
    listed = [seen for seen in snapshots.seen if seen]  # (the start-up list may come first, empty)
    assert listed[0] == {"notes": "Waiting", "harbour": "Waiting"}  # listed at once, before any reading
    assert any("Reading" in state for seen in snapshots.seen for state in seen.values())
    assert window.library.status.isHidden()  # the status bar's "Library: reading …" goes once all is read
    assert states(window) == {"Observatory notes": "Ready", "Harbour guide": "Ready"}
    panel = window.library.panel
    rows = {panel.items[i].text(TITLE): panel.items[i] for i in panel.items}
    assert rows["Observatory notes"].text(1) == "3" and rows["Harbour guide"].text(1) == "4"
    assert "tokens" in rows["Harbour guide"].toolTip(2) and "tokens" not in rows["Harbour guide"].text(2)
    assert panel.summary.text() == "2 documents · 2 ready" and not panel.hint.isVisible()
    header = panel.tree.headerItem()
    shown = " ".join([panel.summary.text(), panel.detail.text(), window.library.status.text(),
                      *(header.text(c) for c in range(4)), *(r.text(c) for r in rows.values() for c in range(4)),
                      *(b.text() for b in (panel.add_files_button, panel.add_folder_button, panel.remove_button)),
                      *(b.text() for b in window.chat.scope_buttons.values())])
    for word in ("token", "segment", "sha256", "queued"):
        assert word not in shown.lower(), word
    assert "tokens" in header.toolTip(2)  # the detail is in the tooltip
    assert "error" not in window.banners.texts() and "library" not in window.banners.texts()


def test_dropping_files_on_the_panel_adds_them_and_remove_takes_one_out(qtbot, make_window, engine, tmp_path):
    folder = shelf(tmp_path / "shelf")
    window = make_window(engine)
    panel = window.library.panel
    window.side.setCurrentWidget(panel)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder / "notes.pdf")), QUrl.fromLocalFile(str(folder / "harbour.pdf"))])
    enter = QDragEnterEvent(panel.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(panel.rect().center()), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(panel, drop)
    wait_ready(qtbot, window, 2)
    assert window.view.page_count() == 0  # dropped on the library: added, not opened in the reader
    harbour = next(i for i in panel.items if panel.items[i].text(TITLE) == "Harbour guide")
    panel.tree.setCurrentItem(panel.items[harbour])
    assert panel.remove_button.isEnabled() and str(folder / "harbour.pdf") in panel.detail.text()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: list(states(window)) == ["Observatory notes"], timeout=WAIT)
    assert panel.summary.text() == "1 document · 1 ready"
    (notes_id, notes_item), = panel.items.items()
    panel.tree.itemDoubleClicked.emit(notes_item, 0)  # double-click: open it in the reader
    wait_open(qtbot, window, 3)
    assert window.path == str((folder / "notes.pdf").resolve())
    window.close()
    assert [Path(d["path"]).name for d in LibraryQueue(Library(tmp_path / "data" / "library.sqlite").db).items()] \
        == ["notes.pdf"]
    assert (folder / "harbour.pdf").is_file()  # the file itself stays


def test_a_document_that_cannot_be_read_shows_why(qtbot, make_window, engine, tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    window = make_window(engine)
    panel = window.library.panel
    panel.sig_add.emit([str(bad)])
    wait_ready(qtbot, window, 1)
    (item_id, item), = panel.items.items()
    assert panel.state_of(item_id) == "Couldn't read"
    reason = panel.documents[item_id]["reason"]
    assert reason and item.toolTip(STATE) == reason
    panel.tree.setCurrentItem(item)
    assert f"Couldn't read it: {reason}" in panel.detail.text()
    assert panel.summary.text() == "1 document · 0 ready · 1 couldn't be read"
    window.chat.set_scope("library")  # nothing ready: the question says so in plain words, no crash
    window.chat.question.setPlainText(QUESTION)
    window.chat.submit()
    assert "No document of the library is ready yet" in window.chat.cards[-1].answer_label.text()


def test_a_library_question_cites_another_document_and_its_citation_opens_it(qtbot, make_window, engine,
                                                                             tmp_path):
    folder = shelf(tmp_path / "shelf")
    window = make_window(engine)
    window.library.add([folder])
    wait_ready(qtbot, window, 2)
    window.open_pdf(folder / "harbour.pdf")
    wait_open(qtbot, window, 4)
    window.chat.scope_buttons["library"].click()
    assert window.chat.scope == "library" and "whole library" in window.chat.question.placeholderText()
    window.chat.question.setPlainText(QUESTION)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=WAIT) as blocker:
        window.chat.submit()
    entry = blocker.args[0]
    notes = str((folder / "notes.pdf").resolve())
    cited = entry["citations"][0]
    assert cited["document"]["path"] == notes and cited["page"] == 2
    card = window.chat.cards[-1]
    assert "Observatory notes, p. 2" in card.citations_label.text()
    # The answer opened the cited document at the cited page; back to the harbour guide, then click the source
    wait_open(qtbot, window, 3)
    window.open_pdf(folder / "harbour.pdf")
    wait_open(qtbot, window, 4)
    assert window.chat.cards and window.chat.cards[-1] is card  # the library's chat stays
    card.citations_label.linkActivated.emit("0")
    qtbot.waitUntil(lambda: window.path == notes and window.view.page_count() == 3, timeout=WAIT)
    qtbot.waitUntil(lambda: any(item.flash_rects for item in window.view.pages), timeout=WAIT)
    assert window.view.current_page() == 1 and window.view.pages[1].flash_rects
    assert window.sha256 == cited["document"]["sha256"]
    drawn = sorted((item.number + 1, round(r.left(), 1)) for item in window.view.pages for r, _ in item.highlights)
    wanted = sorted((h["page"], round(h["box"][0], 1)) for h in entry["highlights"]
                    if h["document"] == cited["document"]["sha256"])
    assert wanted and drawn == wanted
    # Back to "This document": the library's answers go, the document's own chat comes back; and again
    window.chat.set_scope("document")
    assert not window.chat.cards
    window.chat.set_scope("library")
    assert [c.entry["question"] for c in window.chat.cards] == [QUESTION]


def test_the_queue_resumes_in_a_new_window_and_a_changed_file_is_read_again(qtbot, make_window, tiny_model_dir,
                                                                            tmp_path, monkeypatch):
    folder = shelf(tmp_path / "shelf")
    with monkeypatch.context() as patch:  # a first run that quits before reading anything
        patch.setattr(LibraryController, "start_reading", lambda self: None)
        first = make_window(new_engine(tiny_model_dir, tmp_path / "data"))
        first.library.add([folder])
        qtbot.waitUntil(lambda: len(states(first)) == 2, timeout=WAIT)
        assert set(states(first).values()) == {"Waiting"}
        assert first.library.status.text() == "Library: 2 waiting"
        first.close()
    second = make_window(new_engine(tiny_model_dir, tmp_path / "data"))
    wait_ready(qtbot, second, 2)
    assert set(states(second).values()) == {"Ready"}
    before = {d["title"]: d for d in second.library.documents}
    second.close()
    pdfs.paragraphs_pdf(folder / "notes.pdf", [pdfs.FILLER, "The secret launch code of the observatory is 9921."],
                        title="Observatory notes")
    third = make_window(new_engine(tiny_model_dir, tmp_path / "data"))
    wait_ready(qtbot, third, 2)
    after = {d["title"]: d for d in third.library.documents}
    assert after["Observatory notes"]["sha256"] != before["Observatory notes"]["sha256"]
    assert after["Observatory notes"]["pages"] == 2
    assert after["Harbour guide"]["updated"] == before["Harbour guide"]["updated"]  # unchanged: not read again


def test_a_question_asked_while_the_library_reads_is_answered_and_the_reading_goes_on(qtbot, make_window, engine,
                                                                                    tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(6):
        pdfs.paragraphs_pdf(folder / f"part{n}.pdf", [pdfs.FILLER * 6 + f" Part {n} ends here."] * 3)
    book = pdfs.fact_pdf(tmp_path / "open.pdf")
    window = make_window(engine)
    window.library.add([folder])
    qtbot.waitUntil(lambda: len(states(window)) == 6, timeout=WAIT)
    window.open_pdf(book)
    wait_open(qtbot, window, 3)
    window.chat.question.setPlainText(QUESTION)
    running = window.library.reading  # the document being read now, if any, goes back to the queue
    with qtbot.waitSignal(window.sig_answer_shown, timeout=WAIT):
        window.chat.submit()
        assert running is None or running.should_stop()
    wait_ready(qtbot, window, 6)
    assert set(states(window).values()) == {"Ready"}
    assert "error" not in window.banners.texts() and "library" not in window.banners.texts()


def test_a_failing_library_job_is_a_banner_and_the_window_goes_on(qtbot, make_window, engine, tmp_path, monkeypatch):
    def broken(paths):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "library_add", broken)
    window = make_window(engine)
    with qtbot.waitSignal(window.sig_error_shown, timeout=WAIT) as blocker:
        window.library.add([shelf(tmp_path / "shelf")])
    assert blocker.args == ["library", "RuntimeError: disk on fire"]
    assert "disk on fire" in window.banners.texts()["library"]
    monkeypatch.undo()
    window.library.add([tmp_path / "shelf"])
    wait_ready(qtbot, window, 2)
    window.library.add([tmp_path / "nothing-here"])  # a path that is not there: said in plain words
    qtbot.waitUntil(lambda: "was not found" in window.banners.texts().get("library", ""), timeout=WAIT)


def test_a_document_being_read_shows_a_progress_bar_in_plain_words(qtbot):
    from PySide6.QtWidgets import QProgressBar

    from app.gui.library_panel import LibraryPanel

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    item = {"id": 7, "path": "/books/manual.pdf", "title": "manual", "pages": None, "tokens": None,
            "state": "reading", "done": 3840, "total": 78531, "reason": None}
    panel.show_documents([item])
    bar = panel.tree.itemWidget(panel.items[7], STATE)
    assert isinstance(bar, QProgressBar) and bar.text() == "Reading 4%" and panel.state_of(7) == "Reading 4%"
    panel.show_reading(7, 39_266, 78531)
    assert bar.value() == 50 and "39,266 of 78,531 tokens" in bar.toolTip()
    panel.show_documents([dict(item, state="ready", pages=100, tokens=78531)])
    assert panel.tree.itemWidget(panel.items[7], STATE) is None and panel.state_of(7) == "Ready"
    assert panel.items[7].text(2) == "79k" and panel.items[7].text(1) == "100"
