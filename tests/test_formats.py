"""Formats other than PDF (EPUB, FB2, XPS, CBZ, plain text, scanned images) and damaged PDFs that MuPDF repairs;
every file is written by the tests."""
from __future__ import annotations

import json

import pymupdf
import pytest

from engine.errors import PdfError
from engine.ingest import formats
from engine.ingest.extract import ingest_pdf, open_pdf

import pdfs

STORY = ["The harbour master keeps the tide tables in a blue cabinet by the door.",
         "The ferry to Gull Island leaves every morning at nine o'clock from pier four."]


def assert_words_index_text(doc) -> None:
    for word in doc.words:
        assert doc.text[word.start:word.end] == word.text
        page = doc.pages[word.page]
        assert 0 <= word.x0 < word.x1 <= page.width + 1 and 0 <= word.y0 < word.y1 <= page.height + 1


@pytest.mark.parametrize("name, make, kind", [
    ("story.epub", lambda p: pdfs.epub_file(p, STORY), "EPUB"),
    ("story.fb2", lambda p: pdfs.fb2_file(p, STORY), "FB2"),
    ("story.txt", lambda p: (p.write_text("\n\n".join(STORY), encoding="utf-8"), p)[1], "plain text"),
    ("story.xps", lambda p: pdfs.xps_file(p, STORY), "XPS"),
])
def test_other_formats_read_like_pdfs(tmp_path, name, make, kind):
    doc = ingest_pdf(make(tmp_path / name))
    text = " ".join(doc.text.split())
    assert all(" ".join(line.split()) in text for line in STORY)
    assert doc.report.format == kind and doc.report.ocr is None and doc.notice() is None
    assert_words_index_text(doc)


def test_reflowable_formats_get_the_same_pages_as_the_viewer(tmp_path):
    long_story = [" ".join(STORY) * 12] * 6
    path = pdfs.epub_file(tmp_path / "long.epub", long_story)
    doc = ingest_pdf(path)
    assert len(doc.pages) > 1 and (doc.pages[0].width, doc.pages[0].height) == formats.REFLOW_PAGE
    with open_pdf(path) as viewer:  # the window opens documents the same way, so boxes match its pages
        assert viewer.page_count == len(doc.pages)
        last = doc.words[-1]
        found = viewer[last.page].search_for(last.text)
        assert any(abs(rect.x0 - last.x0) < 0.5 and abs(rect.y0 - last.y0) < 2 for rect in found)


def test_comic_archive_of_images_is_recognised(tmp_path):
    doc = ingest_pdf(pdfs.cbz_file(tmp_path / "story.cbz", STORY))
    assert doc.report.format == "CBZ" and doc.report.ocr.pages == [0, 1]
    assert "Gull Island" in " ".join(doc.text.split())
    assert_words_index_text(doc)


def test_scanned_image_file_is_recognised(tmp_path):
    source = pymupdf.open()
    page = source.new_page(width=420, height=300)
    page.insert_textbox(pymupdf.Rect(30, 30, 390, 270), STORY[1], fontsize=14)
    path = tmp_path / "photo.png"
    path.write_bytes(pdfs.scan_pixmap(page, 200, angle=0.7, noise=10).tobytes("png"))
    doc = ingest_pdf(path)
    assert doc.report.format == "image" and "ferry" in doc.text and "This document is a scan" in doc.notice()


@pytest.mark.parametrize("name, make, message", [
    ("empty.epub", lambda p: pdfs.epub_file(p, [""]), "has no text"),
    ("empty.txt", lambda p: (p.write_text("   \n"), p)[1], "has no text|no pages"),
    ("notes.docx", lambda p: (p.write_bytes(b"PK\x03\x04 not really"), p)[1], "not a document DocFocus can read"),
    ("broken.epub", lambda p: (p.write_bytes(b"this is no zip archive"), p)[1], "damaged|no pages|no text"),
])
def test_bad_documents_have_clear_messages(tmp_path, name, make, message):
    with pytest.raises(PdfError, match=message) as caught:
        ingest_pdf(make(tmp_path / name))
    assert name in str(caught.value)


def test_unknown_format_names_what_can_be_read(tmp_path):
    path = tmp_path / "notes.docx"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(PdfError) as caught:
        ingest_pdf(path)
    assert "EPUB" in caught.value.hint and "plain text" in caught.value.hint


def test_every_accepted_suffix_has_a_file_type():
    assert set(formats.SUFFIXES) == {".pdf", *formats.FILE_TYPES}
    assert all(f"*{suffix}" in formats.OPEN_FILTER for suffix in formats.SUFFIXES)


def test_repaired_pdf_says_what_was_lost(tmp_path):
    doc = ingest_pdf(pdfs.damaged_pdf(tmp_path / "report.pdf", pages=5, keep=0.6))
    readable = sorted({w.page for w in doc.words})
    assert readable and len(readable) < 5  # MuPDF recovered some pages, not all
    missing = [n + 1 for n in range(5) if n not in readable]
    notice = doc.notice()
    assert "report.pdf is damaged" in notice and "repaired" in notice
    assert f"{missing[0]}" in notice and "missing or no text" in notice


def test_repaired_pdf_with_a_lost_page_says_how_many_were_read(tmp_path):
    doc = ingest_pdf(pdfs.damaged_pdf(tmp_path / "report.pdf", pages=5, keep=0.95, unlink_second_page=True))
    assert len(doc.pages) == 4 and "Page 2 of" not in doc.text
    assert "4 of the 5 pages it declares could be read" in doc.notice()


def test_healthy_pdf_has_no_damage_notice(tmp_path, fact_pdf):
    assert ingest_pdf(fact_pdf).report.damage is None


def test_damage_notice_travels_with_the_answer(tmp_path, tiny_engine):
    doc = tiny_engine.open_document(tiny_engine.ingest(pdfs.damaged_pdf(tmp_path / "report.pdf")))
    answer = tiny_engine.ask(doc, "What does page 2 say?")
    assert "damaged" in answer.notice and "damaged" in doc.notice()
    assert answer.document["damage"] == doc.ingested.report.damage and answer.document["format"] == "PDF"
    again = tiny_engine.ingest(tmp_path / "report.pdf")  # the library copy keeps the notice
    assert again.notice() == doc.ingested.notice()


def test_cli_prints_the_damage_notice(tmp_path, tiny_model_dir):
    from test_cli import docfocus

    result = docfocus("ask", str(pdfs.damaged_pdf(tmp_path / "report.pdf")), "What does page 2 say?", "--json",
                      "--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "4")
    assert result.returncode == 0, result.stderr
    assert "Note: report.pdf is damaged" in result.stderr
    answer = json.loads(result.stdout.splitlines()[0])
    assert any("report.pdf is damaged" in notice for notice in answer["notices"])
