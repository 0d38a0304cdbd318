"""Issue 24, where the model looked: the strip beside the page view's scrollbar and the thumbnails' marks show, for
the selected answer, the share of its evidence and highlights on each page; a click on a mark goes there."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from app.gui.engine_worker import Job
from app.gui.looked_strip import page_shares
from engine.answer.result import Answer, Evidence, Highlight

from gui_support import book, gui_engine, make_window, qsettings, wait_open  # noqa: F401 (fixtures)

BOX = [72.0, 120.0, 160.0, 132.0]


def answer(evidence: list[tuple[int, float]], highlights: list[tuple[int, float]], question: str = "Q?") -> Answer:
    """An answer whose evidence passages (page, score) and highlighted words (page, weight) are known."""
    return Answer(question=question, answer="Yes.", document={"sha256": "x"}, model={}, attention={}, timings={},
                  cache_hit=False, evidence=[Evidence(page, f"Passage on page {page}.", score, [BOX], [0, 5])
                                             for page, score in evidence],
                  highlights=[Highlight(page, BOX, weight) for page, weight in highlights])


def deliver(qtbot, window, answer: Answer):
    job = Job("ask")
    window.chat.start_answer(answer.question, job.id)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=5_000):
        window.worker.sig_answer.emit(job.id, answer)
    return window.chat.cards[-1]


def test_shares_are_half_the_evidence_scores_and_half_the_highlight_weights():
    known = answer([(15, 1.0), (16, 0.8), (19, 0.2)], [(15, 1.0), (15, 0.6), (16, 0.4)])
    from app.gui.answer_card import answer_entry

    shares = page_shares(answer_entry(known))
    assert shares == pytest.approx({14: 0.65, 15: 0.30, 18: 0.05})
    assert page_shares({}) == {} and page_shares(answer_entry(answer([], []))) == {}
    only_evidence = answer_entry(answer([(3, 1.0), (4, 1.0)], []))
    assert page_shares(only_evidence) == {2: 0.5, 3: 0.5}
    # Across the library: this document's pages only, each with its share of the whole answer.
    library = {"library": True,
               "evidence": [{"page": 2, "score": 1.0, "document": {"sha256": "here"}},
                            {"page": 7, "score": 1.0, "document": {"sha256": "elsewhere"}}],
               "highlights": [{"page": 2, "box": BOX, "weight": 1.0, "document": "here"},
                              {"page": 7, "box": BOX, "weight": 3.0, "document": "elsewhere"}]}
    assert page_shares(library, "here") == pytest.approx({1: 0.5 * 0.5 + 0.5 * 0.25})


def test_the_strip_and_thumbnails_mark_a_known_answer_follow_the_selection_and_go_to_a_page(qtbot, make_window,
                                                                                             book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    strip, view, thumbnails = window.looked, window.view, window.side.thumbnails
    assert strip.isVisible() and strip.marks() == []  # no answer selected: an empty strip
    # Beside the scrollbar: between the pages and the bar, as tall as the pages' viewport.
    assert strip.geometry().left() == view.viewport().geometry().right() + 1
    assert strip.geometry().right() < view.verticalScrollBar().mapTo(view, QPoint(0, 0)).x()
    assert strip.height() == view.viewport().height()
    first = deliver(qtbot, window, answer([(15, 1.0), (16, 0.8), (19, 0.2)], [(15, 1.0), (15, 0.6), (16, 0.4)]))
    assert strip.shares == pytest.approx({14: 0.65, 15: 0.30, 18: 0.05})
    marks = dict(strip.marks())
    assert list(marks) == [14, 15, 18]
    top, height = strip.groove()
    assert 0 < top < 30 and strip.height() - 60 < height < strip.height()  # the bar's groove, between its arrows
    for page, rect in marks.items():  # each mark where its page lies in the document, as the scrollbar maps it
        assert rect.center().y() == pytest.approx(top + (page + 0.5) / 30 * height, abs=2.0)
    view.go_to_page(14)  # its page in view: the scrollbar's handle is level with its mark
    handle = view.verticalScrollBar()
    handle_top = top + handle.value() / (handle.maximum() + handle.pageStep()) * height
    assert abs(handle_top - marks[14].top()) < 0.5 * marks[14].height()
    assert marks[14].width() > marks[15].width() > marks[18].width() > 0
    assert [thumbnails.item(p).text() for p in (13, 14, 15, 18)] == ["14", "15  ·  65%", "16  ·  30%", "19  ·  5%"]
    assert thumbnails.item(14).toolTip().startswith("Page 15: 65% of what the model kept")
    # Click a mark: the view goes to its page.
    view.go_to_page(0)
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=marks[18].center().toPoint())
    assert view.current_page() == 18
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(5, strip.height() - 2))  # no mark there
    assert view.current_page() == 18
    # Another answer selected: its pages; the first one selected again: its pages again.
    deliver(qtbot, window, answer([(3, 1.0)], [(3, 1.0)], "Another?"))
    assert strip.shares == {2: 1.0} and [p for p, _ in strip.marks()] == [2]
    assert thumbnails.item(14).text() == "15" and thumbnails.item(2).text() == "3  ·  100%"
    qtbot.mouseClick(first.question_label, Qt.MouseButton.LeftButton)
    assert [p for p, _ in strip.marks()] == [14, 15, 18]
    # No answer selected (the chat cleared): empty.
    window.chat.clear_chat()
    assert strip.marks() == [] and thumbnails.item(14).text() == "15"


def test_a_real_answer_marks_the_pages_of_its_evidence_and_highlights(qtbot, make_window, book, gui_engine):
    window = make_window(engine=gui_engine)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000) as shown:
        window.ask("Where did the zeppelin fly?")
    entry = shown.args[0]
    pages = {e["page"] - 1 for e in entry["evidence"]} | {h["page"] - 1 for h in entry["highlights"]}
    assert pages and {page for page, _ in window.looked.marks()} == pages  # one story: the same passages
    assert sum(window.looked.shares.values()) == pytest.approx(1.0)
    assert all("%" in window.side.thumbnails.item(page).text() for page in pages)
