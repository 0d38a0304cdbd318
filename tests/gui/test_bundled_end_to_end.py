"""End to end with the real bundled model: ask through the window about a fact in a generated PDF."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from gui_support import make_window, qsettings  # noqa: F401 (fixtures)

pytestmark = pytest.mark.model


@pytest.fixture()
def dense_bundled_engine(bundled_dir, tmp_path):
    """The bundled model with dense answering: the GUI is under test here, not DGA's accuracy
    (at the time of writing DGA on this 135M model answered "444" to this question)."""
    from engine.api import Engine, EngineSettings
    from engine.library import Library

    return Engine(EngineSettings(model=None, device="cpu", attention_mode="dense", max_new_tokens=30),
                  library=Library(tmp_path / "library.sqlite"))


def test_bundled_model_answers_in_chat_pane_and_highlights_fact_page(qtbot, make_window, dense_bundled_engine,
                                                                     fact_pdf):
    window = make_window(engine=dense_bundled_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_document_ready, timeout=120_000):
        window.open_pdf(fact_pdf)
    window.chat.question.setPlainText("What is the observatory's secret launch code?")
    with qtbot.waitSignal(window.sig_answer_shown, timeout=300_000) as blocker:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    entry = blocker.args[0]
    card = window.chat.cards[-1]
    assert "4417" in entry["answer"]
    assert "4417" in card.answer_label.text()
    assert window.chat.selected is card
    # The answer rests on page 2 (index 1): the view went there and draws exactly the engine's highlights.
    assert entry["citations"] and entry["citations"][0]["page"] == 2, entry["citations"]
    assert ">p. 2<" in card.citations_label.text() and window.view.current_page() == 1
    drawn = {(item.number + 1, round(rect.x(), 1), round(rect.y(), 1)) for item in window.view.pages
             for rect, _ in item.highlights}
    assert drawn == {(h["page"], round(h["box"][0], 1), round(h["box"][1], 1)) for h in entry["highlights"]}
    assert any(page == 2 for page, _, _ in drawn)
    assert "Model:" in window.model_label.text() and "not loaded" not in window.model_label.text()
