"""PDF builders for tests: every PDF is made here with PyMuPDF, with text at known places."""
from __future__ import annotations

from pathlib import Path

import pymupdf

FILLER = ("The committee met in the spring to review the annual report. Members discussed the budget, "
          "the schedule of works and the minutes of the previous meeting. ")
FACT = "The secret launch code of the observatory is 4417."


def text_pdf(path: Path, pages: list[list[tuple[float, float, str]]], title: str | None = None) -> Path:
    """One page per item; each line is (x, y, text) placed with insert_text (baseline at y)."""
    document = pymupdf.open()
    for lines in pages:
        page = document.new_page(width=595, height=842)
        for x, y, text in lines:
            page.insert_text((x, y), text, fontsize=11)
    if title:
        document.set_metadata({"title": title})
    document.save(path)
    return path


def paragraphs_pdf(path: Path, paragraphs: list[str], title: str | None = None) -> Path:
    """Each paragraph on its own page, wrapped in a text box."""
    document = pymupdf.open()
    for paragraph in paragraphs:
        page = document.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(60, 60, 535, 800), paragraph, fontsize=11)
    if title:
        document.set_metadata({"title": title})
    document.save(path)
    return path


PAGE_ONE = ("The observatory stands on a hill above the town. It was opened in 1962 and has two domes. "
            "The larger dome holds a reflecting telescope with a mirror of one meter. ")
PAGE_THREE = ("Visitors can join a guided tour on Friday evenings. The tour lasts ninety minutes and ends "
              "in the library, where old star charts are on display. ")


def fact_pdf(path: Path) -> Path:
    """Three pages of varied text with one stated fact on page 2."""
    return paragraphs_pdf(path, [PAGE_ONE + FILLER, FILLER + FACT + " The code is changed every year.",
                                 PAGE_THREE + FILLER], title="Observatory notes")


def two_column_pdf(path: Path) -> Path:
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    page.insert_textbox(pymupdf.Rect(50, 60, 280, 400), "Left column first. Left column second.", fontsize=11)
    page.insert_textbox(pymupdf.Rect(315, 60, 545, 400), "Right column first. Right column second.", fontsize=11)
    document.save(path)
    return path


def scanned_pdf(path: Path) -> Path:
    """A page that holds only an image (no text layer), like an un-OCRed scan."""
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 64, 64), False)
    pixmap.clear_with(200)
    page.insert_image(pymupdf.Rect(50, 50, 300, 300), pixmap=pixmap)
    document.save(path)
    return path


def encrypted_pdf(path: Path, password: str = "s3cret") -> Path:
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "Classified: the vault opens at midnight.", fontsize=11)
    document.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")
    return path


def corrupt_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\ngarbage garbage\n%%EOF\n")
    return path
