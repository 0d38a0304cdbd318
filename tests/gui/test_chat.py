"""The chat pane with the tiny random model: streaming, Stop, evidence, highlights, history, errors."""
from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from gui_support import book, book_pdf, gui_engine, make_window, qsettings, wait_open  # noqa: F401 (fixtures)


QUESTION = "What is the secret launch code?"


def open_and_prepare(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.open_pdf(path)
    qtbot.waitUntil(lambda: window.handle is not None and window.activity.text() == "Ready", timeout=60_000)


def ask_by_keyboard(qtbot, window, question: str) -> None:
    window.chat.question.setFocus()
    qtbot.keyClicks(window.chat.question, question)
    qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)


def test_enter_sends_shift_enter_makes_new_line(qtbot, make_window):
    window = make_window()
    box = window.chat.question
    qtbot.keyClicks(box, "first line")
    qtbot.keyClick(box, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(box, "second")
    assert box.toPlainText() == "first line\nsecond"
    with qtbot.waitSignal(window.chat.sig_ask) as blocker:
        qtbot.keyClick(box, Qt.Key.Key_Return)
    assert blocker.args == ["first line\nsecond"]
    assert box.toPlainText() == ""


def test_ask_streams_answer_into_chat_pane(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    assert "tiny" in window.model_label.text() or "Model:" in window.model_label.text()
    assert "not loaded" not in window.model_label.text()
    assert "cpu" in window.device_label.text().lower()
    pieces = []
    window.worker.sig_text.connect(pieces.append)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000) as blocker:
        ask_by_keyboard(qtbot, window, QUESTION)
        assert window.chat.busy and window.chat.stop_button.isEnabled()
    answer = window.chat.cards[-1].entry
    assert len(pieces) > 3  # streamed piece by piece
    card = window.chat.cards[-1]
    assert card.question_label.text() == QUESTION
    assert card.answer_label.text().startswith(answer["answer"][:20])
    assert not window.chat.busy and not window.chat.stop_button.isEnabled()
    assert window.chat.selected is card
    card.copy_answer()
    assert QGuiApplication.clipboard().text() == answer["answer"]


def test_stop_ends_generation_quickly(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    window.chat.question.setPlainText("Tell me everything about the observatory in detail.")
    window.chat.send_button.click()
    qtbot.waitUntil(lambda: window.chat.current is not None and len(window.chat.current.streamed) > 0, timeout=60_000)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=10_000) as blocker:
        stopped_at = time.monotonic()
        qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - stopped_at < 1.0
    answer = blocker.args[0]
    assert answer["stopped"]
    assert answer["timings"]["generated_tokens"] < gui_engine.settings.max_new_tokens
    assert "[stopped]" in window.chat.cards[-1].answer_label.text()
    # The pane accepts the next question.
    assert window.chat.send_button.isEnabled()


def test_evidence_click_scrolls_to_page_and_flashes(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    box = [72.0, 300.0, 300.0, 320.0]
    card = window.chat.add_entry({"question": "Where?", "answer": "There.",
                                  "evidence": [{"page": 1, "text": "first", "score": 0.5, "boxes": []},
                                               {"page": 18, "text": "The zeppelin flew over.", "score": 0.9,
                                                "boxes": [box]}]})
    button = card.findChild(type(window.chat.send_button), "evidence1")
    assert button.text().startswith("p. 18")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    view = window.view
    assert view.current_page() == 17
    flashed = view.pages[17].flash_rects
    assert len(flashed) == 1 and flashed[0].top() == 300.0
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(
        view.pages[17].mapToScene(flashed[0]).boundingRect())
    qtbot.waitUntil(lambda: not view._flash_timer.isActive(), timeout=5_000)
    assert not view.pages[17].flash_on


def _fact_word_indices(handle) -> list[int]:
    words = handle.ingested.words
    return [i for i, w in enumerate(words) if w.text.strip(".") in ("4417", "launch", "code")]


def test_highlights_follow_token_scores_and_selected_answer(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    handle = window.handle
    fact_words = _fact_word_indices(handle)
    assert fact_words
    scores = np.zeros(handle.total_tokens, dtype=np.float32)
    for token, word in enumerate(handle.token_word):
        if word in fact_words:
            scores[token] = 1.0 if handle.ingested.words[word].text.startswith("4417") else 0.5
    window.chat.add_entry({"question": "code?", "answer": "4417", "evidence": [], "token_scores": scores})
    other = window.chat.add_entry({"question": "other", "answer": "x", "evidence": [
        {"page": 3, "text": "Visitors", "score": 1.0, "boxes": [[60, 60, 120, 75]]}], "token_scores": None})
    first = window.chat.cards[0]
    qtbot.mouseClick(first, Qt.MouseButton.LeftButton)
    assert window.chat.selected is first
    lights = window.view.pages[1].highlights
    assert {(l.x0, l.y0) for l in lights} == {(handle.ingested.words[i].x0, handle.ingested.words[i].y0)
                                              for i in fact_words}
    strongest = max(lights, key=lambda l: l.intensity)
    assert strongest.intensity == 1.0 and any(
        handle.ingested.words[i].text.startswith("4417") and handle.ingested.words[i].x0 == strongest.x0
        for i in fact_words)
    assert all(not window.view.pages[p].highlights for p in (0, 2))
    # An earlier/other answer shows its own highlights (here: evidence boxes, no token scores).
    qtbot.mouseClick(other, Qt.MouseButton.LeftButton)
    assert not window.view.pages[1].highlights
    assert [(l.x0, l.y0) for l in window.view.pages[2].highlights] == [(60, 60)]
    # The toolbar toggle hides and shows them.
    window.highlight_action.trigger()
    assert not window.view.highlights_visible
    window.highlight_action.trigger()
    assert window.view.highlights_visible


def test_real_answer_highlights_words_from_its_token_scores(qtbot, make_window, gui_engine, fact_pdf):
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, fact_pdf)
    window.engine_settings.max_new_tokens = 300
    with qtbot.waitSignal(window.sig_answer_shown, timeout=60_000) as blocker:
        window.ask(QUESTION)
    answer = blocker.args[0]
    lights = [light for item in window.view.pages for light in item.highlights]
    if (answer["token_scores"] is None or not np.any(answer["token_scores"])) and not answer["evidence"]:
        pytest.skip("this engine reports no relevance for answers yet")
    assert lights
    words = window.handle.ingested.words
    boxes = {(w.page, w.x0, w.y0) for w in words}
    assert all((light.page, light.x0, light.y0) in boxes for light in lights) or answer["token_scores"] is None


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
    assert window.view.pages[1].highlights  # the restored answer's evidence is shown
    window.chat.clear_button.click()
    assert not window.chat.cards
    qtbot.waitUntil(lambda: cleared == [window.sha256], timeout=10_000)


def test_long_document_gets_window_banner(qtbot, make_window, gui_engine, tmp_path):
    import pdfs

    path = pdfs.paragraphs_pdf(tmp_path / "long.pdf", [pdfs.FILLER * 8] * 12, title="Long")
    window = make_window(engine=gui_engine, auto_prepare=True)
    open_and_prepare(qtbot, window, path)
    assert window.handle.method == "select" and not window.handle.truncated  # read whole, past the window
    assert "window" in window.banners.texts()
    text = window.banners.texts()["window"]
    assert "(12 pages)" in text and "reads all of it" in text


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
    import pdfs
    from PySide6.QtWidgets import QInputDialog

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
