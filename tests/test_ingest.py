"""Ingest: words, boxes, reading-order text and the token -> word map on generated PDFs."""
from __future__ import annotations

import pymupdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import NoTextLayerError, PdfError, PdfPasswordError
from engine.ingest.extract import ingest_pdf
from engine.model.prompt import token_words

import pdfs


def test_words_have_known_boxes_and_offsets(tmp_path):
    path = pdfs.text_pdf(tmp_path / "known.pdf", [[(72, 100, "Alpha beta"), (300, 500, "gamma")],
                                                 [(100, 200, "delta")]], title="Known")
    doc = ingest_pdf(path)
    assert doc.title == "Known"
    assert [w.text for w in doc.words] == ["Alpha", "beta", "gamma", "delta"]
    assert [w.page for w in doc.words] == [0, 0, 0, 1]
    alpha, gamma, delta = doc.words[0], doc.words[2], doc.words[3]
    assert alpha.x0 == pytest.approx(72, abs=1) and alpha.y1 == pytest.approx(100, abs=4)
    assert gamma.x0 == pytest.approx(300, abs=1) and gamma.y0 < 500 < gamma.y1 + 4
    assert delta.x0 == pytest.approx(100, abs=1)
    for word in doc.words:  # every word's span in the text is exactly the word
        assert doc.text[word.start:word.end] == word.text
    assert len(doc.pages) == 2 and doc.pages[1].text_start <= delta.start < doc.pages[1].text_end
    assert doc.page_of_char(delta.start) == 1 and doc.page_of_char(alpha.start) == 0


def test_two_columns_keep_reading_order(tmp_path):
    doc = ingest_pdf(pdfs.two_column_pdf(tmp_path / "cols.pdf"))
    text = " ".join(doc.text.split())
    assert text.index("Left column second") < text.index("Right column first")


def test_unicode_words(tmp_path):
    path = tmp_path / "unicode.pdf"
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "Größe café naïve", fontsize=12)
    document.save(path)
    doc = ingest_pdf(path)
    assert [w.text for w in doc.words] == ["Größe", "café", "naïve"]


def test_token_word_map_matches_boxes(tmp_path, tiny_engine):
    path = pdfs.text_pdf(tmp_path / "map.pdf", [[(72, 100, "Lighthouse keeper Margaret"), (72, 300, "Olsen")]])
    handle = tiny_engine.open_document(path)
    words = handle.ingested.words
    olsen = [i for i, w in enumerate(words) if w.text == "Olsen"][0]
    tokens = [t for t in range(handle.total_tokens) if handle.token_word[t] == olsen]
    assert tokens, "the word Olsen must own at least one token"
    pieces = "".join(handle.ingested.text[s:e] for s, e in handle.layout.doc_offsets[tokens])
    assert pieces.strip() == "Olsen"
    assert words[olsen].y0 < 300 < words[olsen].y1 + 4  # the mapped word's box is where we wrote it
    mapped = {int(w) for w in handle.token_word if w >= 0}
    assert mapped == set(range(len(words)))  # every word owns a token


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=6), min_size=1, max_size=12),
       st.integers(0, 80), st.integers(0, 20))
def test_words_for_span_property(tokens, start, width):
    from engine.ingest.extract import IngestedDocument, Page, Word

    words, pos = [], 0
    for text in tokens:
        words.append(Word(0, 0, 0, 1, 1, text, pos, pos + len(text)))
        pos += len(text) + 1
    doc = IngestedDocument("x", "x", "x", [Page(0, 1, 1, 0, pos)], words, " ".join(tokens))
    end = start + width
    expected = [i for i, w in enumerate(words) if w.start < end and w.end > start]
    assert list(doc.words_for_span(start, end)) == expected
    import numpy as np

    mapped = token_words(doc, np.array([[start, end]]))[0]
    assert mapped == (expected[0] if expected and width > 0 else -1)


def test_scanned_pdf_says_no_text_layer(tmp_path):
    with pytest.raises(NoTextLayerError, match="no text layer"):
        ingest_pdf(pdfs.scanned_pdf(tmp_path / "scan.pdf"))


def test_encrypted_pdf_needs_password(tmp_path):
    path = pdfs.encrypted_pdf(tmp_path / "locked.pdf")
    with pytest.raises(PdfPasswordError, match="encrypted"):
        ingest_pdf(path)
    with pytest.raises(PdfPasswordError, match="Wrong password"):
        ingest_pdf(path, password="nope")
    assert "vault" in ingest_pdf(path, password="s3cret").text


@pytest.mark.parametrize("maker, message", [
    (lambda p: p, "not found"),
    (lambda p: (p.write_text("hello, not a pdf"), p)[1], "not a PDF"),
    (pdfs.corrupt_pdf, "damaged|no pages"),
])
def test_bad_files_have_clear_messages(tmp_path, maker, message):
    path = maker(tmp_path / "bad.pdf")
    with pytest.raises(PdfError, match=message):
        ingest_pdf(path)
