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
    from engine.library.documents import Library

    return Engine(EngineSettings(model=None, device="cpu").changed(attention={"mode": "dense"}, answer={"max_new_tokens": 30}),
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


def test_on_a_scan_the_answer_citation_and_highlights_land_on_the_printed_words(qtbot, make_window,
                                                                                dense_bundled_engine, tmp_path):
    """Every page a scan (no text layer): the engine's OCR boxes reach the view in page coordinates."""
    import pymupdf

    import pdfs

    born = pdfs.paragraphs_pdf(tmp_path / "born.pdf", [pdfs.PAGE_ONE + pdfs.FILLER, pdfs.FILLER + pdfs.FACT,
                                                       pdfs.PAGE_THREE + pdfs.FILLER])
    with pymupdf.open(born) as source:
        path = pdfs.scanned_pdf_of(source, tmp_path / "scan.pdf", dpi=200, noise=8.0)  # unturned: same place
        printed = {n: [(pymupdf.Rect(w[:4]), w[4]) for w in source[n].get_text("words")] for n in range(3)}
        launch_code = source[1].search_for("launch code")
    window = make_window(engine=dense_bundled_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_document_ready, timeout=300_000):
        window.open_pdf(path)
    assert "This document is a scan" in window.banners.texts()["reading"]
    window.chat.question.setPlainText("What is the observatory's secret launch code?")
    with qtbot.waitSignal(window.sig_answer_shown, timeout=300_000) as blocker:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    entry, view = blocker.args[0], window.view
    assert "4417" in entry["answer"]
    assert entry["citations"][0]["page"] == 2 and view.current_page() == 1
    # The citation flashes where "launch code" is printed on the scanned page.
    flashed = [pymupdf.Rect(r.left(), r.top(), r.right(), r.bottom()) for r in view.pages[1].flash_rects]
    for phrase in launch_code:
        assert any(abs(phrase & rect) > 0.5 * abs(phrase) for rect in flashed), (phrase, flashed)
    # Every highlight drawn is a recognised word's box over the word printed there, with the same text.
    recognised = window.handle.ingested
    drawn = [(item.number, pymupdf.Rect(r.left(), r.top(), r.right(), r.bottom())) for item in view.pages
             for r, _ in item.highlights]
    assert drawn and any(page == 1 for page, _ in drawn)
    for page, box in drawn:
        word = max(recognised.page_words(page), key=lambda w: abs(pymupdf.Rect(w.x0, w.y0, w.x1, w.y1) & box))
        assert [word.x0, word.y0, word.x1, word.y1] == pytest.approx(list(box), abs=0.06)
        rect, text = max(printed[page], key=lambda item: abs(item[0] & box))
        assert abs(rect & box) > 0.5 * min(abs(rect), abs(box)), (page, box, rect, text)
        assert word.text.strip(".,") == text.strip(".,"), (word.text, text)
    # Selecting on the page the answer went to uses the same recognised words.
    qtbot.waitUntil(lambda: 1 in view.words, timeout=10_000)
    assert [w.text for w in view.words[1]] == [w.text for w in recognised.page_words(1)]
