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


def scan_pixmap(page: pymupdf.Page, dpi: int, angle: float = 0.0, noise: float = 0.0,
                seed: int = 0) -> pymupdf.Pixmap:
    """``page`` as a gray scan: rendered at ``dpi``, turned by ``angle`` degrees, with Gaussian noise of
    ``noise`` gray levels and a few dark specks, as a flatbed scanner would give it."""
    import numpy as np

    matrix = pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(angle)
    pixmap = page.get_pixmap(matrix=matrix, colorspace=pymupdf.csGRAY, alpha=False)
    image = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.h, pixmap.stride)[:, :pixmap.w]
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float32) + rng.normal(0, noise, image.shape) if noise else image.astype(np.float32)
    specks = rng.random(image.shape) < (0.0005 if noise else 0)
    noisy[specks] = 40
    data = np.ascontiguousarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return pymupdf.Pixmap(pymupdf.csGRAY, pixmap.w, pixmap.h, data.tobytes(), False)


def scanned_pdf_of(source: pymupdf.Document, path: Path, dpi: int = 300, angle: float = 0.0, noise: float = 0.0,
                   pages: list[int] | None = None, seed: int = 0) -> Path:
    """``source`` with the listed pages (all by default) replaced by scans of themselves: one image filling the
    page (a turned scan is shrunk to fit), no text layer; the other pages stay born-digital."""
    scanned = set(range(source.page_count) if pages is None else pages)
    document = pymupdf.open()
    for number, page in enumerate(source):
        if number not in scanned:
            document.insert_pdf(source, from_page=number, to_page=number)
            continue
        new = document.new_page(width=page.rect.width, height=page.rect.height)
        new.insert_image(new.rect, pixmap=scan_pixmap(page, dpi, angle, noise, seed + number))
    document.save(path, deflate=True)
    return path


def scanned_paragraphs_pdf(path: Path, paragraphs: list[str], dpi: int = 300, angle: float = 0.0,
                           noise: float = 0.0, fontsize: float = 11) -> Path:
    """Each paragraph on its own page (as ``paragraphs_pdf``), every page a scan without a text layer."""
    source = pymupdf.open()
    for paragraph in paragraphs:
        page = source.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(60, 60, 535, 800), paragraph, fontsize=fontsize)
    return scanned_pdf_of(source, path, dpi, angle, noise)


def damaged_pdf(path: Path, pages: int = 5, keep: float = 0.6, unlink_second_page: bool = False) -> Path:
    """A PDF of ``pages`` pages with a line of text each, cut after ``keep`` of its bytes (a broken download):
    MuPDF repairs it and the last pages lose their text. ``unlink_second_page`` also blanks the second page's
    entry in the page tree (whose /Count still says ``pages``), so the repaired file has a page fewer."""
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page()
        page.insert_text((72, 72), f"Page {number + 1} of the damaged report says hello.", fontsize=11)
    data = document.tobytes(garbage=0, deflate=False)
    if unlink_second_page:
        kids = data[data.index(b"/Kids[") + 6:]
        second = kids.split(b" R")[1] + b" R"  # " 8 0 R": the same length in spaces keeps the offsets
        data = data.replace(second, b" " * len(second), 1)
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# Other formats PyMuPDF opens, written here byte by byte (nothing downloaded).

def epub_file(path: Path, chapters: list[str], title: str = "Harbour notes") -> Path:
    """A minimal EPUB 3: one XHTML file per chapter (a paragraph each; an empty string gives an empty body)."""
    import zipfile

    items = "".join(f'<item id="c{i}" href="c{i}.xhtml" media-type="application/xhtml+xml"/>'
                    for i in range(len(chapters)))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
           f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">docfocus-test</dc:identifier>'
           f'<dc:title>{title}</dc:title><dc:language>en</dc:language></metadata>'
           f'<manifest>{items}</manifest><spine>{spine}</spine></package>')
    container = ('<?xml version="1.0"?><container version="1.0" '
                 'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                 '</rootfiles></container>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", opf)
        for i, chapter in enumerate(chapters):
            body = f"<p>{chapter}</p>" if chapter else ""
            archive.writestr(f"OEBPS/c{i}.xhtml", '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
                                                  f"<head><title>c{i}</title></head><body>{body}</body></html>")
    return path


def fb2_file(path: Path, paragraphs: list[str], title: str = "Harbour notes") -> Path:
    """A FictionBook 2 file with one section of paragraphs."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>'
                    '<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"><description><title-info>'
                    f"<book-title>{title}</book-title><lang>en</lang></title-info></description>"
                    f"<body><section>{body}</section></body></FictionBook>", encoding="utf-8")
    return path


def xps_file(path: Path, lines: list[str]) -> Path:
    """A one-page XPS document with one line of glyphs per item (PyMuPDF's Helvetica as the font)."""
    import zipfile

    schema = "http://schemas.microsoft.com/xps/2005/06"
    glyphs = "".join(f'<Glyphs Fill="#ff000000" FontUri="/Resources/font.ttf" FontRenderingEmSize="16" '
                     f'OriginX="96" OriginY="{120 + 28 * i}" UnicodeString="{line}"/>' for i, line in enumerate(lines))
    types = ('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="fdseq" ContentType="application/vnd.ms-package.xps-fixeddocumentsequence+xml"/>'
             '<Default Extension="fdoc" ContentType="application/vnd.ms-package.xps-fixeddocument+xml"/>'
             '<Default Extension="fpage" ContentType="application/vnd.ms-package.xps-fixedpage+xml"/>'
             '<Default Extension="ttf" ContentType="application/vnd.ms-opentype"/></Types>')
    rels = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Type="http://schemas.microsoft.com/xps/2005/06/fixedrepresentation" '
            'Target="/FixedDocSeq.fdseq" Id="R0"/></Relationships>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("FixedDocSeq.fdseq", f'<FixedDocumentSequence xmlns="{schema}">'
                                              '<DocumentReference Source="/Documents/1/FixedDoc.fdoc"/>'
                                              "</FixedDocumentSequence>")
        archive.writestr("Documents/1/FixedDoc.fdoc", f'<FixedDocument xmlns="{schema}"><PageContent '
                                                      'Source="/Documents/1/Pages/1.fpage"/></FixedDocument>')
        archive.writestr("Documents/1/Pages/1.fpage", f'<FixedPage xmlns="{schema}" Width="816" Height="1056" '
                                                      f'xml:lang="en-US">{glyphs}</FixedPage>')
        archive.writestr("Resources/font.ttf", pymupdf.Font("helv").buffer)
    return path


def cbz_file(path: Path, paragraphs: list[str], dpi: int = 200) -> Path:
    """A comic-book archive: one PNG per paragraph (the paragraph rendered at ``dpi``), so no text layer."""
    import zipfile

    source = pymupdf.open()
    with zipfile.ZipFile(path, "w") as archive:
        for i, paragraph in enumerate(paragraphs):
            page = source.new_page(width=420, height=595)
            page.insert_textbox(pymupdf.Rect(40, 40, 380, 555), paragraph, fontsize=12)
            archive.writestr(f"page{i + 1:03}.png", page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY).tobytes("png"))
    return path
