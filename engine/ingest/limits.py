"""How large a document may grow once unpacked, checked before any of it is extracted.

A small file can unpack to gigabytes (a "decompression bomb": a 1.5 MB EPUB holding a 1 GB chapter, a PDF
stream of 400 MB of blanks in 400 KB), and MuPDF would unpack all of it into memory. So before MuPDF reads a
document's content, the sizes it would unpack to are checked:

- ZIP-based formats (EPUB, CBZ, FBZ, XPS, OXPS): the sizes the ZIP directory declares (MuPDF never unpacks an
  entry past its declared size: it stops with an error), per entry and in total, and the pixels of images;
- MOBI: the text length its header declares; plain text and FB2: the file's own size;
- images (PNG, JPEG, TIFF): the pixels their header declares;
- PDF (once open: MuPDF has read only the cross-reference table then): every Flate stream that is not an
  image is inflated and counted, never kept, and stops at the limit; an image's pixels are bounded by the
  size it declares, which MuPDF decodes to and no further, and that size is checked.

A document over a limit is refused with a PdfError that says so; nothing is extracted from it.
"""
from __future__ import annotations

import base64
import re
import struct
import zipfile
import zlib
from pathlib import Path

import pymupdf

from ..errors import PdfError

MAX_PART = 256 * 1024**2  # one part unpacked: a ZIP entry, a MOBI's text, a text file, a PDF stream
MAX_TOTAL = 2 * 1024**3  # all the entries of a ZIP-based document together
MAX_ENTRIES = 100_000
MAX_PIXELS = 178_000_000  # one image (13,300 x 13,300; A0 at 300 dpi fits): about 530 MB decoded in colour
_ZIP_KINDS = ("epub", "cbz", "xps")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".jxr", ".jp2")
_INFLATE_STEP = 1 << 20  # bytes inflated at a time while counting
_PASSED: set[tuple[str, int, int]] = set()  # PDF files (path, size, time) within the limits


class TooLarge(PdfError):
    """The document would unpack to more than DocFocus reads (a decompression bomb, or simply too large)."""


def _mb(size: int) -> str:
    return f"{size / 1024**2:,.0f} MB" if size < 1024**3 else f"{size / 1024**3:,.1f} GB"


def _refuse(path: Path, what: str) -> TooLarge:
    return TooLarge(f"{path.name} is not read: {what}. A document this large once unpacked may be a "
                    f"decompression bomb, and reading it could exhaust the memory.",
                    f"DocFocus reads documents whose parts unpack to at most {_mb(MAX_PART)} each "
                    f"({_mb(MAX_TOTAL)} in all) and whose images hold at most {MAX_PIXELS // 10**6} million pixels.")


def check_file(path: Path, kind: str) -> None:
    """Refuse a non-PDF file that would unpack past the limits (``kind``: PyMuPDF's file type)."""
    if kind in _ZIP_KINDS or (kind == "fb2" and zipfile.is_zipfile(path)):
        _check_zip(path)
    elif kind == "mobi":
        _check_mobi(path)
    elif kind in ("txt", "fb2") and path.stat().st_size > MAX_PART:
        raise _refuse(path, f"its text is {_mb(path.stat().st_size)}")
    elif kind in ("png", "jpg", "tiff"):
        with open(path, "rb") as handle:
            _check_pixels(path, handle, "the image")


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ENTRIES:
                raise _refuse(path, f"it holds {len(entries):,} files")
            for entry in entries:
                if entry.file_size > MAX_PART:
                    raise _refuse(path, f"{entry.filename} unpacks to {_mb(entry.file_size)} "
                                        f"(from {_mb(entry.compress_size)})")
            total = sum(entry.file_size for entry in entries)
            if total > MAX_TOTAL:
                raise _refuse(path, f"it unpacks to {_mb(total)}")
            for entry in entries:
                if entry.filename.lower().endswith(_IMAGE_SUFFIXES):
                    with archive.open(entry) as handle:
                        _check_pixels(path, handle, entry.filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError):  # a ZIP Python cannot list: MuPDF says whether it can read it
        return


def _check_mobi(path: Path) -> None:
    """The text length in a MOBI's PalmDOC header (record 0): MuPDF unpacks that much text."""
    with open(path, "rb") as handle:
        header = handle.read(86)
        if len(header) < 86:
            return
        records = struct.unpack(">H", header[76:78])[0]
        if records == 0:
            return
        offset = struct.unpack(">I", header[78:82])[0]
        handle.seek(offset)
        record0 = handle.read(16)
    if len(record0) >= 8:
        text_length = struct.unpack(">I", record0[4:8])[0]
        if text_length > MAX_PART:
            raise _refuse(path, f"its text unpacks to {_mb(text_length)}")


def _check_pixels(path: Path, handle, what: str) -> None:
    """An image's declared width x height (its header only: nothing is decoded)."""
    from PIL import Image

    try:
        with Image.open(handle) as image:
            width, height = image.size
    except Image.DecompressionBombError as error:  # PIL's own limit (2 x 89.5 million pixels), about ours
        raise _refuse(path, f"{what} has more than {MAX_PIXELS // 10**6} million pixels") from error
    except (OSError, ValueError, SyntaxError, struct.error):
        return  # an image PIL cannot size: MuPDF reports it if it cannot read it either
    if width * height > MAX_PIXELS:
        raise _refuse(path, f"{what} is {width:,} x {height:,} pixels")


# ---------------------------------------------------------------- PDF, once open


def check_pdf(document: pymupdf.Document, path: Path) -> None:
    """Refuse a PDF with a non-image stream that inflates past MAX_PART or an image past MAX_PIXELS (a file
    that passed is not checked again in this process: the viewer and the reader both open it)."""
    stat = path.stat()
    version = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if version in _PASSED:
        return
    _check_streams(document, path)
    _PASSED.add(version)


def _check_streams(document: pymupdf.Document, path: Path) -> None:
    for xref in range(1, document.xref_length()):
        try:
            too_large = _stream_too_large(document, xref)
        except Exception:  # noqa: BLE001 - a broken object: MuPDF reports it (or repairs it) when reading
            continue
        if too_large:
            raise _refuse(path, f"{too_large} (object {xref})")


def _stream_too_large(document: pymupdf.Document, xref: int) -> str | None:
    """What is too large about object ``xref``, or None."""
    if not document.xref_is_stream(xref):
        return None
    if _key(document, xref, "Subtype") == "/Image":
        width, height = _number(document, xref, "Width"), _number(document, xref, "Height")
        return f"an image is {width:,} x {height:,} pixels" if width * height > MAX_PIXELS else None
    size = unpacked_size(document.xref_stream_raw(xref), _filters(document, xref), MAX_PART)
    return f"a stream unpacks to more than {_mb(MAX_PART)}" if size > MAX_PART else None


def _filters(document: pymupdf.Document, xref: int) -> list[str]:
    """The stream's filter names in the order they apply ("/FlateDecode" or "[/A85 /Fl]" -> ["A85", "Fl"])."""
    return re.findall(r"/([A-Za-z0-9]+)", _key(document, xref, "Filter"))


def _key(document: pymupdf.Document, xref: int, name: str) -> str:
    kind, value = document.xref_get_key(xref, name)
    return value if kind in ("name", "array") else ""


def _number(document: pymupdf.Document, xref: int, name: str) -> int:
    kind, value = document.xref_get_key(xref, name)
    try:
        return max(0, int(float(value))) if kind in ("int", "float") else 0
    except ValueError:
        return 0


def unpacked_size(raw: bytes, filters: list[str], limit: int) -> int:
    """Bytes a stream unpacks to through its leading ASCII and Flate filters, counted a step at a time and not
    kept; the count stops once past ``limit``. 0 without a Flate filter (the stream is no larger than the file).
    Filters after those (or data that does not unpack cleanly) end the count where it is."""
    data, flate = raw, 0
    for name in filters:
        if name in _ASCII and flate == 0:
            try:
                data = _ASCII[name](data)
            except ValueError:
                return 0
        elif name in _FLATE:
            flate += 1
        else:
            break
    return _inflated_size(data, flate, limit) if flate else 0


def _hex(data: bytes) -> bytes:
    text = re.sub(rb"\s", b"", data).split(b">")[0]
    return bytes.fromhex((text + b"0" * (len(text) % 2)).decode("ascii"))


def _a85(data: bytes) -> bytes:
    text = re.sub(rb"\s", b"", data)
    text = text[2:] if text.startswith(b"<~") else text
    return base64.a85decode(text.split(b"~>")[0])


_ASCII = {"ASCIIHexDecode": _hex, "AHx": _hex, "ASCII85Decode": _a85, "A85": _a85}
_FLATE = ("FlateDecode", "Fl")


def _inflated_size(raw: bytes, layers: int, limit: int) -> int:
    """Bytes that ``layers`` Flate filters in a row make of ``raw``, past ``limit`` at most."""
    decoders = [zlib.decompressobj() for _ in range(layers)]
    total = 0

    def feed(data: bytes, level: int) -> bool:  # True once past the limit
        nonlocal total
        if level == layers:
            total += len(data)
            return total > limit
        decoder = decoders[level]
        while not decoder.eof:
            out = decoder.decompress(data, _INFLATE_STEP)
            data = decoder.unconsumed_tail
            if not out:
                break
            if feed(out, level + 1):
                return True
        return False

    try:
        feed(raw, 0)
    except zlib.error:
        pass
    return total
