"""OCR of pages without a text layer, on scans made here: text rendered to images at 150 and 300 dpi, slightly
turned, with noise. Nothing is downloaded; the models are the ONNX files of the rapidocr wheel."""
from __future__ import annotations

import difflib

import numpy as np
import pymupdf
import pytest

from engine.api import Engine, EngineSettings
from engine.errors import CancelledError, NoTextLayerError
from engine.ingest import ocr
from engine.ingest.extract import OCR_STAGE, ingest_pdf
from engine.library.documents import Library

import pdfs

TEXT = [pdfs.PAGE_ONE + pdfs.FILLER, pdfs.FILLER + pdfs.FACT + " The code is changed every year."]


def word_accuracy(truth: str, got: str) -> float:
    """Share of the true words found in order (difflib's matching blocks over word sequences)."""
    truth_words, got_words = truth.split(), got.split()
    matcher = difflib.SequenceMatcher(None, truth_words, got_words, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(truth_words)


@pytest.fixture()
def engine(tmp_path) -> Engine:
    """An engine with its own library; ingesting needs no model."""
    return Engine(EngineSettings(), library=Library(tmp_path / "library.sqlite"))


@pytest.fixture()
def page_reads(monkeypatch) -> list[int]:
    """Records the page numbers rendered for the real recogniser (which still does all the work)."""
    calls: list[int] = []
    real = ocr.render

    def spy(page):
        calls.append(page.number)
        return real(page)

    monkeypatch.setattr(ocr, "render", spy)
    return calls


@pytest.mark.parametrize("dpi, angle, noise, least", [(300, 0.8, 12.0, 0.95), (150, -1.2, 12.0, 0.90)])
def test_turned_noisy_scans_are_read(tmp_path, dpi, angle, noise, least):
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi, angle, noise)
    with pymupdf.open(path) as pdf:
        assert not any(page.get_text().strip() for page in pdf)  # no text layer at all
    doc = ingest_pdf(path)
    assert word_accuracy(" ".join(TEXT), doc.text) >= least
    assert "4417" in doc.text
    summary = doc.report.ocr
    assert summary.pages == [0, 1] and summary.words == len(doc.words) and summary.confidence > 0.9
    assert "This document is a scan" in doc.notice() and "all 2 pages" in doc.notice()
    for word in doc.words:  # words index the text exactly and lie on their page
        assert doc.text[word.start:word.end] == word.text
        assert 0 <= word.x0 < word.x1 <= 595 and 0 <= word.y0 < word.y1 <= 842


def test_ocr_boxes_are_where_the_words_are_printed(tmp_path):
    born = pdfs.paragraphs_pdf(tmp_path / "born.pdf", TEXT)
    truth = ingest_pdf(born)
    with pymupdf.open(born) as source:
        scanned = ingest_pdf(pdfs.scanned_pdf_of(source, tmp_path / "scan.pdf", dpi=200))
    matcher = difflib.SequenceMatcher(None, [w.text for w in truth.words], [w.text for w in scanned.words],
                                      autojunk=False)
    pairs = [(truth.words[b.a + k], scanned.words[b.b + k]) for b in matcher.get_matching_blocks()
             for k in range(b.size)]
    assert len(pairs) >= 0.95 * len(truth.words)
    assert all(printed.page == read.page for printed, read in pairs)
    # Edges in points; a character's position along the line is known to about a fifth of its width.
    for edge in ("x0", "x1", "y0", "y1"):
        error = np.abs([getattr(read, edge) - getattr(printed, edge) for printed, read in pairs])
        assert np.median(error) < 1.5 and np.quantile(error, 0.95) < 3.0, (edge, np.median(error))


def test_mixed_document_recognises_only_the_scanned_page(tmp_path):
    born_path = pdfs.fact_pdf(tmp_path / "born.pdf")
    born = ingest_pdf(born_path)
    with pymupdf.open(born_path) as source:
        mixed = ingest_pdf(pdfs.scanned_pdf_of(source, tmp_path / "mixed.pdf", dpi=300, angle=0.5, noise=8.0,
                                               pages=[1]))
    assert mixed.report.ocr.pages == [1]
    for number in (0, 2):  # the born-digital pages keep their exact text-layer words
        assert [w for w in mixed.words if w.page == number] == [w for w in born.words if w.page == number]
    page_two = " ".join(w.text for w in mixed.words if w.page == 1)
    assert "4417" in page_two and word_accuracy(TEXT[1], page_two) >= 0.9
    assert "recognised the text of page 2 (OCR)" in mixed.notice()


def test_library_keeps_recognised_pages(tmp_path, engine, page_reads):
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi=200)
    first = engine.ingest(path)
    assert page_reads == [0, 1]
    again = Engine(EngineSettings(), library=Library(tmp_path / "library.sqlite")).ingest(path)
    assert page_reads == [0, 1]  # never recognised twice, also from a new engine
    assert again.text == first.text and again.notice() == first.notice()
    assert [w.page for w in again.words] == [w.page for w in first.words]
    assert [w.x0 for w in again.words] == pytest.approx([w.x0 for w in first.words], abs=0.01)
    engine.settings.ocr_language = "latin"  # another language setting reads the scan again
    engine.ingest(path)
    assert page_reads == [0, 1, 0, 1]


def test_cancel_keeps_finished_pages_and_resumes(tmp_path, engine, page_reads):
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi=150)
    seen: list[tuple] = []
    with pytest.raises(CancelledError, match="recognising"):
        engine.ingest(path, progress=lambda *report: seen.append(report),
                      should_stop=lambda: len(seen) >= 2)  # stop once the first page is done
    assert seen == [(OCR_STAGE, 0, 2), (OCR_STAGE, 1, 2)]
    assert engine.library.load(pdfs_sha(path)) is None  # an unfinished document is not in the library
    doc = engine.ingest(path)
    assert page_reads == [0, 1]  # page 1 was not read again
    assert doc.report.ocr.pages == [0, 1] and "4417" in doc.text


def test_a_failing_page_is_reported_and_the_rest_kept(tmp_path, engine, monkeypatch):
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi=150)
    real = ocr.render

    def fails_on_page_two(page):
        if page.number == 1:
            raise MemoryError("cannot allocate 2.1 GB")
        return real(page)

    monkeypatch.setattr(ocr, "render", fails_on_page_two)
    doc = engine.ingest(path)
    assert {w.page for w in doc.words} == {0} and "observatory" in doc.text
    assert doc.report.ocr.pages == [0] and list(doc.report.ocr.failed) == [1]
    assert "page 2 could not be recognised (MemoryError: cannot allocate 2.1 GB)" in doc.notice()
    monkeypatch.setattr(ocr, "render", real)
    retried = engine.ingest(path)  # the library copy had a failed page: that page is tried again
    assert retried.report.ocr.pages == [0, 1] and not retried.report.ocr.failed and "4417" in retried.text
    assert "could not be recognised" not in retried.notice()


def test_missing_models_give_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCFOCUS_OCR_MODELS", str(tmp_path))  # a folder without the ONNX files
    with pytest.raises(NoTextLayerError, match="could not be recognised") as caught:
        ingest_pdf(pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT[:1], dpi=150))
    assert "pip install --no-deps rapidocr" in caught.value.user_message()
    with pymupdf.open(pdfs.fact_pdf(tmp_path / "born.pdf")) as source:
        mixed = ingest_pdf(pdfs.scanned_pdf_of(source, tmp_path / "mixed.pdf", dpi=150, pages=[1]))
    assert {w.page for w in mixed.words} == {0, 2}  # the born-digital pages are kept
    assert "page 2 could not be recognised (The OCR models are not installed" in mixed.notice()


def test_language_setting_limits_the_scripts(tmp_path):
    source = pymupdf.open()
    page = source.new_page(width=595, height=842)
    page.insert_text((72, 120), "北京大学图书馆", fontname="china-s", fontsize=20)
    page.insert_text((250, 120), "Library 2024", fontsize=20)
    path = pdfs.scanned_pdf_of(source, tmp_path / "cjk.pdf", dpi=300)
    chinese = ingest_pdf(path, ocr_language="chinese").text
    latin = ingest_pdf(path, ocr_language="latin").text
    assert "北京" in chinese and "Library" in chinese
    assert "Library" in latin and not any("\u3400" <= c <= "\u9fff" for c in latin)


def test_language_choices_match_the_recogniser():
    from engine.settings import OPTION, SettingsError

    assert [c.value for c in OPTION["ocr_language"].choice_list()] == list(ocr.SCRIPTS)
    with pytest.raises(SettingsError, match="ocr-language"):
        EngineSettings(ocr_language="klingon")


@pytest.mark.model
def test_bundled_model_answers_from_a_scan_with_evidence_on_the_page(tmp_path, bundled_engine):
    path = pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf",
                                       [pdfs.PAGE_ONE + pdfs.FILLER, pdfs.FILLER + pdfs.FACT,
                                        pdfs.PAGE_THREE + pdfs.FILLER], dpi=200, angle=0.6, noise=8.0)
    doc = bundled_engine.open_document(bundled_engine.ingest(path))
    answer = bundled_engine.ask(doc, "What is the observatory's secret launch code?")
    assert "4417" in answer.answer
    assert "scan" in answer.notice
    top = answer.evidence[0]
    assert top.page == 2 and "launch code" in top.text  # evidence on the scanned page ...
    words = doc.ingested.words[top.words[0]:top.words[1]]
    assert " ".join(w.text for w in words) in " ".join(top.text.split())  # ... boxes of the recognised words
    assert top.boxes == [[round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1)] for w in words]
    assert {h.page for h in answer.highlights} >= {2}


def pdfs_sha(path) -> str:
    from engine.ingest.extract import file_sha256

    return file_sha256(path)


def test_packaged_app_finds_its_shipped_models(tmp_path, monkeypatch):
    import sys

    shipped = tmp_path / "ocr-models"
    shipped.mkdir()
    real = ocr.model_folder()
    for name in ocr.MODEL_FILES:
        (shipped / name).symlink_to(real / name)
    monkeypatch.delenv("DOCFOCUS_OCR_MODELS", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert ocr.model_folder() == shipped


def test_viewer_lock_is_free_while_the_models_run(tmp_path, monkeypatch):
    import threading

    lock = threading.Lock()
    held_during_models: list[bool] = []
    real = ocr.Recognizer.read

    def read(self, scan, should_stop=None):
        held_during_models.append(lock.locked())
        return real(self, scan, should_stop)

    monkeypatch.setattr(ocr.Recognizer, "read", read)
    doc = ingest_pdf(pdfs.scanned_paragraphs_pdf(tmp_path / "scan.pdf", TEXT, dpi=150), pdf_lock=lock)
    assert held_during_models == [False, False] and not lock.locked()
    assert [w.text for w in doc.page_words(1)] == [w.text for w in doc.words if w.page == 1]
