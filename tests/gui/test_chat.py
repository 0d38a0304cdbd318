"""The chat pane with the tiny random model: streaming, Stop, evidence, highlights, history, errors."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from gui_support import Recorder, book, book_pdf, gui_engine, make_window, qsettings, streaming_engine, wait_open  # noqa: F401 (fixtures)

QUESTION = "What is the secret launch code?"


def open_and_prepare(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.open_pdf(path)
    qtbot.waitUntil(lambda: window.handle is not None and window.activity.text() == "Ready", timeout=60_000)


def ask_by_keyboard(qtbot, window, question: str) -> None:
    window.chat.question.setFocus()
    qtbot.keyClicks(window.chat.question, question)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)


def test_enter_sends_shift_enter_makes_new_line(qtbot, make_window, fact_pdf):
    window = make_window()
    window.open_pdf(fact_pdf)
    wait_open(qtbot, window, 3)
    box = window.chat.question
    qtbot.keyClicks(box, "first line")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(box, "second")
    assert box.toPlainText() == "first line\nsecond"
    with qtbot.waitSignal(window.chat.sig_ask) as blocker:
        qtbot.keyClick(box, Qt.Key.Key_Return)
    assert blocker.args == ["first line\nsecond"]
    assert box.toPlainText() == ""  # the question went into a card
    assert window.chat.cards[-1].question_label.text() == "first line\nsecond"
    window.stop()


def test_ask_streams_answer_into_chat_pane(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    assert "tiny" in window.model_label.text() or "Model:" in window.model_label.text()
    assert "not loaded" not in window.model_label.text()
    assert "cpu" in window.device_label.text().lower()
    pieces = Recorder(window.worker.sig_text)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000):
        ask_by_keyboard(qtbot, window, QUESTION)
        assert window.chat.busy and window.chat.stop_button.isEnabled()
    answer = window.chat.cards[-1].entry
    assert len(pieces.calls) > 3  # streamed piece by piece
    card = window.chat.cards[-1]
    assert card.question_label.text() == QUESTION
    assert card.answer_label.text().startswith(answer["answer"][:20])
    assert not window.chat.busy and not window.chat.stop_button.isEnabled()
    assert window.chat.selected is card
    card.copy_answer()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith(answer["answer"])  # an unsupported answer is copied with its mark and the quote
    if answer["supported"]:
        assert copied == answer["answer"]
    else:
        assert "[Not supported by the document]" in copied[len(answer["answer"]):]


def test_stop_ends_generation_quickly(qtbot, make_window, streaming_engine, fact_pdf):
    window = make_window(engine=streaming_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    window.chat.question.setPlainText("Tell me everything about the observatory in detail.")
    window.chat.send_button.click()
    qtbot.waitUntil(lambda: window.chat.current is not None and len(window.chat.current.streamed) > 0, timeout=60_000)
    card = window.chat.current
    with qtbot.waitSignal(window.sig_answer_shown, timeout=10_000) as blocker:
        qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
        # The window answers the click at once, before the worker has stopped.
        assert "[stopped]" in card.answer_label.text()
        assert not window.chat.stop_button.isEnabled() and window.chat.send_button.isEnabled()
        assert window.chat.question.hasFocus()
    answer = blocker.args[0]
    assert answer["stopped"]
    assert answer["timings"]["generated_tokens"] < streaming_engine.settings.answer.max_new_tokens
    assert "[stopped]" in card.answer_label.text()
    assert window.chat.question.hasFocus() and not window.page_box.hasFocus()


def test_evidence_click_scrolls_to_page_and_flashes(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    box = [72.0, 300.0, 300.0, 320.0]
    card = window.chat.add_entry({"question": "Where?", "answer": "There.",
                                  "evidence": [{"page": 1, "text": "first", "score": 0.5, "boxes": []},
                                               {"page": 18, "text": "The zeppelin flew over.", "score": 0.9,
                                                "boxes": [box]}]})
    assert card.evidence_toggle.text().startswith("Evidence: 2 passages")
    button = card.findChild(type(window.chat.send_button), "evidence1")
    assert not button.isVisible()  # compact: the list opens on request
    qtbot.mouseClick(card.evidence_toggle, Qt.MouseButton.LeftButton)
    assert button.isVisible() and button.text().startswith("p. 18")
    assert "The zeppelin flew over." in button.toolTip()  # the full passage on hover
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    view = window.view
    assert view.current_page() == 17
    flashed = view.pages[17].flash_rects
    assert len(flashed) == 1 and flashed[0].top() == 300.0
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(
        view.pages[17].mapToScene(flashed[0]).boundingRect())
    qtbot.waitUntil(lambda: not view._flash_timer.isActive(), timeout=5_000)
    assert not view.pages[17].flash_on


def drawn(window) -> set:
    """The highlights on the pages: (1-based page, x0, y0, weight)."""
    return {(item.number + 1, round(rect.x()), round(rect.y()), round(weight, 2))
            for item in window.view.pages for rect, weight in item.highlights}


def test_selecting_an_answer_by_its_text_draws_exactly_its_highlights(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    first = window.chat.add_entry({"question": "first?", "answer": "One.", "highlights": [
        {"page": 4, "box": [72, 120, 140, 132], "weight": 1.0}, {"page": 4, "box": [150, 120, 200, 132],
                                                                 "weight": 0.4}]})
    second = window.chat.add_entry({"question": "second?", "answer": "Two.", "highlights": [
        {"page": 18, "box": [72, 144, 130, 156], "weight": 0.7}]})
    qtbot.mouseClick(first.answer_label, Qt.MouseButton.LeftButton)  # its text, not blank space
    assert window.chat.selected is first and first.selected and not second.selected
    assert drawn(window) == {(4, 72, 120, 1.0), (4, 150, 120, 0.4)}
    qtbot.mouseClick(second.question_label, Qt.MouseButton.LeftButton)
    assert window.chat.selected is second
    assert drawn(window) == {(18, 72, 144, 0.7)}
    window.highlight_action.trigger()  # the toolbar toggle hides and shows them
    assert not window.view.highlights_visible
    window.highlight_action.trigger()
    assert window.view.highlights_visible


def test_real_answer_draws_the_engines_highlights(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000) as blocker:
        window.ask(QUESTION)
    entry = blocker.args[0]
    expected = {(h["page"], round(h["box"][0]), round(h["box"][1]), round(h["weight"], 2))
                for h in entry["highlights"]}
    assert expected, "the engine gave this answer no highlights"
    assert drawn(window) == expected


def test_engine_error_shows_banner_and_window_stays_usable(qtbot, make_window, gui_engine, fact_pdf, monkeypatch):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)

    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(gui_engine, "ask", broken)
    with qtbot.waitSignal(window.sig_error_shown, timeout=30_000):
        window.ask(QUESTION)
    assert "the model fell over" in window.banners.texts()["error"]
    assert "the model fell over" in window.chat.cards[-1].answer_label.text()
    assert not window.chat.busy
    monkeypatch.undo()
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000):
        window.ask(QUESTION)
    assert window.chat.cards[-1].entry["answer"] is not None
    window.view.zoom_in()  # the reader still works too


def test_history_is_restored_when_a_document_is_reopened(qtbot, make_window, gui_engine, fact_pdf, monkeypatch):
    saved = [{"id": 1, "question": "Saved question?", "answer": "Saved answer.", "token_scores": None,
              "evidence": [{"page": 2, "text": "The secret launch code", "score": 1.0, "boxes": [[60, 60, 200, 75]]}],
              "attention": {"mode": "dga"}, "created": 0.0}]
    monkeypatch.setattr(gui_engine, "history", lambda sha256: saved, raising=False)
    cleared = []
    monkeypatch.setattr(gui_engine, "clear_history", cleared.append, raising=False)
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    qtbot.waitUntil(lambda: len(window.chat.cards) == 1, timeout=10_000)
    card = window.chat.cards[0]
    assert card.question_label.text() == "Saved question?"
    assert card.answer_label.text() == "Saved answer."
    assert window.chat.selected is card
    window.chat.clear_button.click()
    assert not window.chat.cards
    window.chat.commit_clear()  # the Undo time is over
    qtbot.waitUntil(lambda: cleared == [window.sha256], timeout=10_000)


def test_long_document_gets_window_banner(qtbot, make_window, gui_engine, tmp_path):
    import pdfs

    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 8] * 12, title="Long")
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, path)
    assert window.handle.method == "select" and not window.handle.truncated  # read whole, past the window
    assert "window" in window.banners.texts()
    text = window.banners.texts()["window"]
    # Plain words in the window; the technical detail (tokens, segments) in the tooltip.
    assert text.startswith("Reads all 12 pages; answers from the passages that match your question")
    assert "token" not in text and "segment" not in text and "takes a while" not in text  # opening reads nothing
    assert window.banners._banners["window"].toolTip() == window.handle.notice()


def test_reopens_at_last_page_and_lists_recent(qtbot, make_window, gui_engine, tmp_path):
    book = book_pdf(tmp_path / "book.pdf")
    other = book_pdf(tmp_path / "other.pdf", pages=3)
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, book)
    qtbot.waitUntil(lambda: window.sha256 is not None, timeout=10_000)
    window.view.go_to_page(7)
    window._save_page()
    qtbot.waitUntil(lambda: gui_engine.library.get_row(window.sha256)["last_page"] == 7, timeout=10_000)
    open_and_prepare(qtbot, window, other)
    qtbot.waitUntil(lambda: [a.toolTip() for a in window.recent_menu.actions()][:2]
                    == [str(other.resolve()), str(book.resolve())], timeout=10_000)
    window.open_pdf(book)
    qtbot.waitUntil(lambda: window.view.current_page() == 7, timeout=10_000)
    qtbot.waitUntil(lambda: window.page_box.value() == 8, timeout=10_000)


def test_encrypted_pdf_asks_for_its_password(qtbot, make_window, gui_engine, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    import pdfs

    answers = iter([("wrong", True), ("s3cret", True)])
    prompts = []

    def get_text(parent, title, prompt, *args, **kwargs):
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    window = make_window(engine=gui_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000) as blocker:
        window.open_pdf(pdfs.encrypted_pdf(tmp_path / "locked.pdf"))
    assert len(prompts) == 2 and prompts[1].startswith("Wrong password")
    assert window.view.page_count() == 1
    assert "vault" in blocker.args[0].ingested.text
