"""Issue 12 in the window: citations, the support verdict, how an answer ended, evidence, and history cards."""
from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui.engine_worker import Job
from engine.answer.result import Answer, Citation, Evidence, Highlight, Quote

from gui_support import book, make_window, qsettings, wait_open  # noqa: F401 (fixtures)

PASSAGE = "Alpha beta gamma delta on page 18. The zeppelin flew over."
BOXES = [[72.0, 372.0, 180.0, 384.0], [190.0, 372.0, 260.0, 384.0]]


def make_answer(**changes) -> Answer:
    evidence = [Evidence(18, PASSAGE, 1.0, BOXES, [10, 20]), Evidence(4, "Alpha beta on page 4.", 0.4,
                                                                      [[72.0, 120.0, 160.0, 132.0]], [1, 5])]
    fields = dict(question="Where did the zeppelin fly?", answer="Over page 18.", document={"sha256": "x"},
                  model={}, attention={"mode": "dga", "gamma": 0.1}, timings={"total_s": 2.5}, evidence=evidence,
                  cache_hit=True, citations=[Citation(18, PASSAGE, 0, BOXES)],
                  highlights=[Highlight(18, BOXES[0], 1.0), Highlight(18, BOXES[1], 0.5)])
    fields.update(changes)
    return Answer(**fields)


def deliver(qtbot, window, answer: Answer):
    """The answer as the engine worker delivers it, for a question the window asked."""
    job = Job("ask")
    window.chat.start_answer(answer.question, job.id)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=5_000) as blocker:
        window.worker.sig_answer.emit(job.id, answer)
    return window.chat.cards[-1], blocker.args[0]


def test_an_answer_scrolls_to_its_first_citation_and_draws_its_highlights(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    card, entry = deliver(qtbot, window, make_answer())
    view = window.view
    assert view.current_page() == 17  # the cited page, not wherever the strongest word is
    assert [(r.left(), r.top()) for r in view.pages[17].flash_rects] == [(72.0, 372.0), (190.0, 372.0)]
    assert sorted((item.number, rect.left(), weight) for item in view.pages for rect, weight in item.highlights) \
        == [(17, 72.0, 1.0), (17, 190.0, 0.5)]
    assert card.citations_label.isVisible() and ">p. 18<" in card.citations_label.text()
    assert not card.support_label.isVisible()


def test_clicking_a_citation_goes_to_its_page_and_flashes_its_passage(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    answer = make_answer(citations=[Citation(4, "Alpha beta on page 4.", 1, [[72.0, 120.0, 160.0, 132.0]]),
                                    Citation(18, PASSAGE, 0, BOXES)])
    card, _ = deliver(qtbot, window, answer)
    assert card.citations_label.text().count("<a ") == 2
    window.view.go_to_page(25)
    card.citations_label.linkActivated.emit("1")  # what a click on the second link does
    assert window.view.current_page() == 17
    assert len(window.view.pages[17].flash_rects) == 2


def test_an_unsupported_answer_is_shown_as_such_not_as_an_error(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    card, _ = deliver(qtbot, window, make_answer(answer="It flew to Mars.", supported=False,
                                                 quote=Quote(18, "The zeppelin flew over.", False, BOXES)))
    assert card.support_label.isVisible() and "Not found" in card.support_label.text()
    assert card.answer_label.text() == "It flew to Mars." and card.answer_label.font().italic()
    assert "Closest passage" in card.quote_label.text() and "The zeppelin flew over." in card.quote_label.text()
    assert "⚠" not in card.answer_label.text() and "error" not in window.banners.texts()
    assert "dashed" in card.styleSheet()


def test_an_answer_cut_at_the_length_limit_says_so(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    card, _ = deliver(qtbot, window, make_answer(finish="length"))
    assert "cut at the length limit" in card.answer_label.text()
    stopped, _ = deliver(qtbot, window, make_answer(finish="stopped", stopped=True))
    assert "[stopped]" in stopped.answer_label.text() and window.view.pages[17].flash_rects


def test_the_evidence_list_is_compact_best_first_with_the_full_text_on_hover(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    card, _ = deliver(qtbot, window, make_answer())
    assert card.evidence_toggle.text() == "Evidence: 2 passages, best first"
    assert not card.evidence_list.isVisible()
    card.evidence_toggle.click()
    first = card.findChild(type(card.copy_button), "evidence0")
    assert first.isVisible() and first.text().startswith("p. 18")
    assert PASSAGE in first.toolTip()


def test_cards_from_history_behave_like_new_ones(qtbot, make_window, book):
    """History rows are dicts with the Answer's keys; older rows have empty lists."""
    from dataclasses import asdict

    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    saved = asdict(make_answer(supported=False, answer="It flew to Mars.", quote=Quote(18, "The zeppelin flew over.",
                                                                                   False, BOXES)))
    saved.pop("token_scores")
    old = {"question": "An old one?", "answer": "Old.", "evidence": [], "citations": [], "highlights": [],
           "supported": True, "finish": "complete"}
    window.worker.sig_document_row.emit(str(book.resolve()), "sha-of-book", 0)
    window.worker.sig_history.emit("sha-of-book", [old, saved])
    qtbot.waitUntil(lambda: len(window.chat.cards) == 2, timeout=5_000)
    old_card, card = window.chat.cards
    assert window.chat.selected is card and card.support_label.isVisible()
    assert sorted((item.number, rect.left()) for item in window.view.pages for rect, _ in item.highlights) \
        == [(17, 72.0), (17, 190.0)]
    card.citations_label.linkActivated.emit("0")
    assert window.view.current_page() == 17
    qtbot.mouseClick(old_card.answer_label, Qt.MouseButton.LeftButton)
    assert window.chat.selected is old_card and not old_card.citations_label.isVisible()
    assert not any(item.highlights for item in window.view.pages)


def test_plain_words_under_an_answer_with_the_detail_in_its_tooltip(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    card, _ = deliver(qtbot, window, make_answer(attention={"mode": "dga-select", "segments": 9}))
    assert card.meta_label.text() == "2.5 s"
    assert "dga-select" in card.meta_label.toolTip() and "segments: 9" in card.meta_label.toolTip()
