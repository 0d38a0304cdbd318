"""Issue 24, find on recognised (OCR) pages: every hit on every page is counted, scanned pages included, also
where OCR splits "read.fwf" into "read." and "fwf", and also for a find done before the scan was recognised."""
from __future__ import annotations

from collections import Counter

import pymupdf
import pytest
from PySide6.QtCore import Qt

from app.gui.page_layout import PageWord
from app.gui.page_text import find_in_words

import pdfs
from gui_support import make_window, qsettings, wait_open  # noqa: F401 (fixtures)


def test_find_counts_ocr_words_split_at_punctuation():
    # The words PP-OCR gave for R-data.pdf's page 15 scanned at 150 dpi: "read.fwf" cut into "read." and "fwf"
    # (boxes overlapping), and "read.fwf" whole further down.
    words = [PageWord(109, 203, 148, 217, "Function", 3, 4), PageWord(155, 203, 183, 217, "read.", 3, 4),
             PageWord(182, 203, 199, 217, "fwf", 3, 4), PageWord(203, 203, 242, 217, "provides", 3, 4),
             PageWord(72, 452, 96, 466, "with", 5, 1), PageWord(100, 452, 130, 466, "empty", 5, 1),
             PageWord(200, 452, 245, 466, "read.fwf", 5, 1)]
    assert len(find_in_words(words, "read.fwf")) == 2  # was 1
    assert find_in_words(words, "read.fwf")[0] == (155, 203, 199, 217)  # one box over both pieces
    assert len(find_in_words(words, "Function read.fwf provides")) == 1
    assert len(find_in_words(words, "read. fwf")) == 1  # a space of the query falls on a gap
    assert find_in_words(words, "the") == [] and find_in_words(words, "wi thempty") == []  # not across "with empty"
    assert len(find_in_words(words, "with empty")) == 1


def fwf_page(document: pymupdf.Document) -> None:
    """A page of a manual: "read.fwf" three times, in a typewriter font, amid ordinary text."""
    page = document.new_page(width=595, height=842)
    y = 80
    for line in ("Function read.fwf provides a simple way to read such files, specifying a vector of",
                 "field widths. The function reads the file into memory as whole lines and then",
                 "The function read.fwf is slow for large files; use read.table or scan instead.",
                 "Call read.fwf(file, widths) with the widths of the fields."):
        x = 72
        for part in line.replace("read.fwf", "\0read.fwf\0").split("\0"):
            font = "cour" if part == "read.fwf" else "helv"
            page.insert_text((x, y), part, fontname=font, fontsize=10)
            x += pymupdf.get_text_length(part, fontname=font, fontsize=10)
        y += 14


@pytest.fixture()
def scan_engine(tiny_model_dir, tmp_path):
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 8}),
                    library=Library(tmp_path / "library.sqlite"))
    engine.load()
    return engine


def test_find_counts_every_hit_on_every_page_scanned_pages_included(qtbot, make_window, scan_engine, tmp_path):
    source = pymupdf.open()
    fwf_page(source)
    fwf_page(source)
    path = pdfs.scanned_pdf_of(source, tmp_path / "manual.pdf", dpi=120, noise=6.0, pages=[1])  # page 2: a scan
    window = make_window(engine=scan_engine, auto_prepare=True)
    window.open_pdf(path)
    wait_open(qtbot, window, 2)
    view, bar = window.view, window.find_bar
    window.show_find()  # searched at once, while the scan is still being recognised
    bar.edit.setText("read.fwf")
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)
    with qtbot.waitSignal(window.sig_document_ready, timeout=120_000):
        pass
    # The find is done again with the recognised words: the scan's hits are counted too.
    qtbot.waitUntil(lambda: len(view.find_hits) == 6, timeout=10_000)
    assert Counter(page for page, _ in view.find_hits) == {0: 3, 1: 3}
    assert bar.count.text().endswith(" of 6")
    for _ in range(6):
        window.find_next(1)
    assert bar.count.text().endswith(" of 6")
