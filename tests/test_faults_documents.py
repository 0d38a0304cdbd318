"""Issue 23, item 4: MuPDF's errors on open become a clear message (never a traceback), and a document that would
unpack past the limits (a decompression bomb) is refused before anything is extracted from it."""
from __future__ import annotations

import base64
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pymupdf
import pytest

from engine.errors import PdfError
from engine.ingest import limits
from engine.ingest.extract import ingest_pdf, open_pdf

import pdfs
from conftest import ROOT

SAMPLE = ROOT / "resources" / "sample.pdf"


def docfocus(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)


# ---------------------------------------------------------------- MuPDF's errors on open


@pytest.mark.parametrize("length", [196, 9, 600, 1500, 3000])
def test_a_pdf_cut_short_is_a_clear_error_or_what_could_be_read(tmp_path, length):
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(SAMPLE.read_bytes()[:length])
    try:
        document = ingest_pdf(cut)
    except PdfError as error:
        assert "cut.pdf" in str(error)
    else:
        assert document.pages


def test_the_196_byte_pdf_of_the_issue_exits_2_with_a_message(tmp_path):
    cut = tmp_path / "t.pdf"
    cut.write_bytes(SAMPLE.read_bytes()[:196])
    with pytest.raises(PdfError, match=r"t.pdf is damaged and cannot be read \(Invalid number of pages\)"):
        open_pdf(cut)
    result = docfocus("ask", str(cut), "q", home=tmp_path / "home")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "t.pdf is damaged and cannot be read" in result.stderr


# ---------------------------------------------------------------- decompressed size limits


def bomb_epub(path: Path, chapter_bytes: int) -> Path:
    """An EPUB whose one chapter is ``chapter_bytes`` of repeated words (a few hundred KB once compressed)."""
    small = pdfs.epub_file(path.with_name("small.epub"), ["A short first chapter."])
    with zipfile.ZipFile(small) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            if entry.filename != "OEBPS/c0.xhtml":
                archive.writestr(entry, source.read(entry))
        info = zipfile.ZipInfo("OEBPS/c0.xhtml", date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        block = b"word " * (1 << 18)
        with archive.open(info, "w", force_zip64=True) as chapter:  # the chapter the spine names
            chapter.write(b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><p>')
            for _ in range(chapter_bytes // len(block)):
                chapter.write(block)
            chapter.write(b"</p></body></html>")
    return path


def test_an_epub_bomb_is_refused_before_it_is_unpacked(tmp_path):
    bomb = bomb_epub(tmp_path / "bomb.epub", 300 * 1024**2)
    assert bomb.stat().st_size < 2 * 1024**2
    started = time.perf_counter()
    with pytest.raises(limits.TooLarge, match=r"bomb.epub is not read: OEBPS/c0.xhtml unpacks to 300 MB"):
        open_pdf(bomb)
    assert time.perf_counter() - started < 1.0  # the ZIP directory only: nothing was unpacked
    result = docfocus("ask", str(bomb), "q", home=tmp_path / "home")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "decompression bomb" in result.stderr and "at most 256 MB" in result.stderr


def test_a_zip_is_refused_by_its_total_and_its_entry_count(tmp_path, monkeypatch):
    book = pdfs.epub_file(tmp_path / "book.epub", ["one chapter", "another chapter", "a third one"])
    total = sum(entry.file_size for entry in zipfile.ZipFile(book).infolist())
    monkeypatch.setattr(limits, "MAX_TOTAL", total - 1)
    with pytest.raises(limits.TooLarge, match="it unpacks to"):
        open_pdf(book)
    monkeypatch.setattr(limits, "MAX_TOTAL", total)
    assert open_pdf(book).page_count >= 1
    monkeypatch.setattr(limits, "MAX_ENTRIES", 3)
    with pytest.raises(limits.TooLarge, match="it holds 6 files"):
        open_pdf(book)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels (its pixel data is one empty block)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_images_past_the_pixel_limit_are_refused_alone_in_a_comic_and_in_a_pdf(tmp_path):
    image = tmp_path / "scan.png"
    image.write_bytes(png_header(40_000, 30_000))
    with pytest.raises(limits.TooLarge, match="the image has more than 178 million pixels"):
        open_pdf(image)
    comic = pdfs.cbz_file(tmp_path / "comic.cbz", ["A first page of text."], dpi=50)
    with zipfile.ZipFile(comic, "a") as archive:
        archive.writestr("page002.png", png_header(40_000, 30_000))
    with pytest.raises(limits.TooLarge, match="page002.png has more than 178 million pixels"):
        open_pdf(comic)
    document = pymupdf.open(pdfs.fact_pdf(tmp_path / "facts.pdf"))
    xref = document.get_new_xref()
    document.update_object(xref, "<< /Type /XObject /Subtype /Image /Width 40000 /Height 30000 "
                                 "/ColorSpace /DeviceGray /BitsPerComponent 8 >>")
    document.update_stream(xref, b"\x00" * 64)
    document.save(tmp_path / "huge-image.pdf")
    with pytest.raises(limits.TooLarge, match="an image is 40,000 x 30,000 pixels"):
        open_pdf(tmp_path / "huge-image.pdf")


def test_a_pdf_stream_that_inflates_past_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_PART", 4 * 1024**2)
    document = pymupdf.open(pdfs.fact_pdf(tmp_path / "facts.pdf"))
    page = document[0]
    xref = page.get_contents()[0]
    document.update_stream(xref, document.xref_stream(xref) + b"\n" + b" " * (8 * 1024**2))  # Flate: ~8 KB
    document.save(tmp_path / "bomb.pdf")
    assert (tmp_path / "bomb.pdf").stat().st_size < 100_000
    with pytest.raises(limits.TooLarge, match=r"a stream unpacks to more than 4 MB \(object \d+\)"):
        ingest_pdf(tmp_path / "bomb.pdf")


def test_mobi_text_and_plain_text_past_the_limit_are_refused(tmp_path, monkeypatch):
    header = bytearray(78)
    header[60:68] = b"BOOKMOBI"
    struct.pack_into(">H", header, 76, 1)
    record0 = struct.pack(">HHIHHI", 2, 0, 3 * 1024**3, 1, 4096, 0)  # PalmDOC: 3 GB of text declared
    mobi = tmp_path / "book.mobi"
    mobi.write_bytes(bytes(header) + struct.pack(">II", 86, 0) + record0)
    with pytest.raises(limits.TooLarge, match="its text unpacks to 3.0 GB"):
        open_pdf(mobi)
    monkeypatch.setattr(limits, "MAX_PART", 1024**2)
    text = tmp_path / "notes.txt"
    text.write_text("words and more words\n" * 60_000)
    with pytest.raises(limits.TooLarge, match="its text is 1 MB"):
        open_pdf(text)


def test_unpacked_size_follows_ascii_and_flate_filters_and_stops_at_the_limit():
    data = b"x" * 5_000_000
    once = zlib.compress(data)
    twice = zlib.compress(once)
    assert limits.unpacked_size(once, ["FlateDecode"], 10**9) == len(data)
    assert limits.unpacked_size(twice, ["Fl", "Fl"], 10**9) == len(data)
    assert limits.unpacked_size(base64.a85encode(once, adobe=True), ["ASCII85Decode", "FlateDecode"], 10**9) == \
        len(data)
    assert limits.unpacked_size(once.hex().encode() + b">", ["AHx", "Fl"], 10**9) == len(data)
    assert 1_000_000 < limits.unpacked_size(once, ["FlateDecode"], 1_000_000) <= 1_000_000 + (1 << 20)
    assert limits.unpacked_size(b"not deflate data", ["FlateDecode"], 10**9) == 0
    assert limits.unpacked_size(data, [], 10**9) == 0  # no Flate: never larger than the file itself


def test_ordinary_documents_pass_the_limits(tmp_path):
    for path in (SAMPLE, pdfs.epub_file(tmp_path / "b.epub", ["A chapter."]),
                 pdfs.cbz_file(tmp_path / "c.cbz", ["A page."], dpi=50), pdfs.xps_file(tmp_path / "d.xps", ["A line"])):
        assert open_pdf(path).page_count >= 1
