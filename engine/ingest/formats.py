"""Opening the document formats PyMuPDF reads: PDF, EPUB, XPS, FB2, MOBI, CBZ, plain text and scanned images.

Reflowable formats (EPUB, FB2, MOBI, plain text) have no pages of their own: PyMuPDF lays them out on pages of
``REFLOW_PAGE`` at ``REFLOW_FONT_SIZE``. The viewer must open documents with ``open_document`` too, so that the
pages it draws are the ones the words' boxes refer to.

A PDF that MuPDF had to repair is read anyway; ``Damage`` records what it said, so the answer can tell the user
that pages or words may be missing.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from ..errors import PdfError, PdfPasswordError
from . import limits
from .report import page_list

REFLOW_PAGE = (420.0, 595.0)  # A5 in points: a book-like page for EPUB, FB2, MOBI and plain text
REFLOW_FONT_SIZE = 11.0

# File name suffix -> PyMuPDF file type, for everything that is not a PDF (a PDF is known by its header).
FILE_TYPES = {
    ".epub": "epub", ".xps": "xps", ".oxps": "xps", ".fb2": "fb2", ".fbz": "fb2", ".mobi": "mobi",
    ".cbz": "cbz", ".txt": "txt", ".text": "txt",
    ".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tiff", ".tiff": "tiff",
}
NAMES = {"pdf": "PDF", "epub": "EPUB", "xps": "XPS", "fb2": "FB2", "mobi": "MOBI", "cbz": "CBZ",
         "txt": "plain text", "png": "image", "jpg": "image", "tiff": "image"}
# What the open dialog and drag and drop accept (lower case, with the dot).
SUFFIXES = (".pdf", *FILE_TYPES)
OPEN_FILTER = ("Documents (" + " ".join(f"*{s}" for s in SUFFIXES) + ");;PDF (*.pdf);;"
               "E-books (*.epub *.fb2 *.fbz *.mobi);;XPS (*.xps *.oxps);;Comics (*.cbz);;Text (*.txt *.text);;"
               "Scanned images (*.png *.jpg *.jpeg *.tif *.tiff)")


@dataclass
class Damage:
    """What MuPDF reported about a damaged PDF: whether it repaired the file, the page count the file
    declares (None when it cannot be found), and the pages whose content could not be read whole."""

    repaired: bool = False
    declared_pages: int | None = None
    broken_pages: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def file_type(path: Path) -> str:
    """PyMuPDF's file type for ``path``, or a PdfError naming the formats DocFocus reads."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if b"%PDF" in head:
        return "pdf"
    kind = FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        readable = ", ".join(sorted({NAMES[k] for k in ("pdf", *FILE_TYPES.values())}))
        if path.suffix.lower() == ".pdf":
            raise PdfError(f"{path.name} is not a PDF file (it does not start with %PDF).")
        raise PdfError(f"{path.name} is not a document DocFocus can read.", f"DocFocus reads {readable} files.")
    return kind


def open_document(path: str | Path, password: str | None = None) -> pymupdf.Document:
    """Open a document of any supported format (reflowable ones laid out on pages), or raise a PdfError.

    Whatever MuPDF says about a broken file, here or while laying it out, becomes a PdfError; a document that
    would unpack past the limits (engine/ingest/limits.py) is refused before its content is read."""
    path = Path(path)
    if not path.exists():
        raise PdfError(f"File not found: {path}")
    if path.is_dir():
        raise PdfError(f"{path} is a folder, not a document.")
    kind = file_type(path)
    limits.check_file(path, kind)
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    try:
        document = pymupdf.open(path, filetype=kind)
    except Exception as error:  # PyMuPDF raises several types for broken files
        raise PdfError(f"{path.name} is damaged and cannot be read ({error}).") from error
    try:
        _unlock(document, path, password)
        if document.is_pdf:
            limits.check_pdf(document, path)
        if document.is_reflowable:
            document.layout(width=REFLOW_PAGE[0], height=REFLOW_PAGE[1], fontsize=REFLOW_FONT_SIZE)
        if document.page_count == 0:
            raise PdfError(f"{path.name} has no pages.")
    except PdfError:
        document.close()
        raise
    except Exception as error:  # MuPDF's own errors once open ("Invalid number of pages", "text too large")
        document.close()
        raise PdfError(f"{path.name} is damaged and cannot be read ({_plain(error)}).") from error
    return document


def needs_password(document: pymupdf.Document) -> bool:
    """Whether the document can be read only with a password (an encrypted PDF without an empty user password)."""
    return bool(getattr(document, "_docfocus_protected", False) or document.needs_pass)


def requires_password(path: str | Path, pdf_lock=None) -> bool:
    """Whether the file is a PDF that opens only with a password (only its cross-reference table is read);
    ``pdf_lock``: the lock a viewer holds while PyMuPDF runs (it is not thread-safe)."""
    try:
        if file_type(Path(path)) != "pdf":
            return False
        with pdf_lock or contextlib.nullcontext(), pymupdf.open(path, filetype="pdf") as document:
            return bool(document.needs_pass)
    except Exception:  # noqa: BLE001 - a file that cannot be opened says so when it is read
        return False


def _unlock(document: pymupdf.Document, path: Path, password: str | None) -> None:
    if not document.needs_pass:
        return
    if not password:
        raise PdfPasswordError(f"{path.name} is encrypted.", "Give its password with --password.")
    if not document.authenticate(password):
        raise PdfPasswordError(f"Wrong password for {path.name}.")
    document._docfocus_protected = True  # needs_pass turns False once authenticated


def _plain(error: Exception) -> str:
    """MuPDF's message without its error code ("code=7: Invalid number of pages" -> "Invalid number of pages")."""
    return re.sub(r"^code=\d+:\s*", "", str(error)) or type(error).__name__


def start_damage(document: pymupdf.Document, path: Path) -> Damage:
    """The damage known once a PDF is open: repaired or not, and the page count its page tree declares."""
    warnings = pymupdf.TOOLS.mupdf_warnings(reset=True)
    repaired = bool(document.is_pdf and document.is_repaired)
    return Damage(repaired, _declared_pages(path) if repaired else None,
                  warnings=[w for w in warnings.splitlines() if w.strip()])


def page_warnings() -> list[str]:
    """MuPDF's warnings since the last call (reading one page's text) that say its content was cut short; the
    first page's load also reports the repair of the whole file, which says nothing about that page."""
    lines = pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines()
    return [w for w in lines if "content" in w or "syntax error" in w or "unknown keyword" in w]


def _declared_pages(path: Path) -> int | None:
    """The largest /Count of a /Type /Pages node in the raw file: the page count the file was written with."""
    data = Path(path).read_bytes()
    counts = [int(m.group(2)) for m in re.finditer(rb"/Type\s*/Pages\b(.{0,200}?)/Count\s+(\d+)", data, re.S)]
    counts += [int(m.group(1)) for m in re.finditer(rb"/Count\s+(\d+)[^>]{0,200}?/Type\s*/Pages\b", data, re.S)]
    return max(counts) if counts else None


def damage_notice(name: str, damage: Damage, pages: int, empty_pages: list[int]) -> str | None:
    """A plain sentence for a repaired PDF: how many pages were read and which may be missing text."""
    if not damage.repaired and not damage.broken_pages:
        return None
    missing = sorted(page for page in set(damage.broken_pages) | set(empty_pages) if page < pages)
    parts = [f"{name} is damaged; it was repaired to read it"]
    if damage.declared_pages and damage.declared_pages > pages:
        parts.append(f"{pages} of the {damage.declared_pages} pages it declares could be read")
    if missing:
        parts.append(f"{page_list(missing)} {'has' if len(missing) == 1 else 'have'} missing or no text")
    sentence = "; ".join(parts) + "."
    return sentence + " Answers can only use the text that was recovered."
