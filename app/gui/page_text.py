"""The words of pages the engine recognised (OCR), for the viewer's selection, copy and find.

A scanned page has no text layer, so PyMuPDF gives the viewer no words and ``search_for`` finds nothing there.
The engine's ingest has the page's OCR words with boxes in page coordinates; these helpers turn them into the
viewer's ``PageWord``s and search them, without Qt, so both the engine worker (which makes the words) and the PDF
worker (which searches them) can use them in their own threads.
"""
from __future__ import annotations

from .page_layout import PageWord

Box = tuple[float, float, float, float]


def recognised_page_words(ingested) -> dict[int, list[PageWord]]:
    """0-based page -> its words, for every page of an ``engine.ingest.extract.IngestedDocument`` read by OCR.

    The engine's words carry no block or line numbers, but the text between two words says how they are
    separated (" " same line, "\\n" new line, "\\n\\n" new block), so copying keeps the scan's lines."""
    ocr = ingested.report.ocr
    if ocr is None:
        return {}
    pages = {}
    for number in ocr.pages:
        words, out = ingested.page_words(number), []
        block = line = 0
        for previous, word in zip([None, *words], words):
            if previous is not None:
                gap = ingested.text[previous.end:word.start]
                if "\n\n" in gap:
                    block, line = block + 1, 0
                elif "\n" in gap:
                    line += 1
            out.append(PageWord(word.x0, word.y0, word.x1, word.y1, word.text, block, line))
        pages[number] = out
    return pages


def _fold(text: str) -> str:
    """Lower case, one character for one (so offsets in the folded text are offsets in the original)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def find_in_words(words: list[PageWord], text: str) -> list[Box]:
    """Where ``text`` occurs in a page's words, as PyMuPDF's ``search_for`` reports it: case-insensitive, across
    words (any run of spaces in ``text`` matches one word gap) and lines, one box per line a hit covers. A hit
    inside a word gets the matching part of the word's box (OCR boxes run from the first to the last character)."""
    query = _fold(" ".join(text.split()))
    if not query or not words:
        return []
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word.text) + 1
    page_text = _fold(" ".join(word.text for word in words))
    boxes: list[Box] = []
    at = page_text.find(query)
    while at >= 0:
        boxes.extend(_hit_boxes(words, starts, at, at + len(query)))
        at = page_text.find(query, at + len(query))
    return boxes


def _hit_boxes(words: list[PageWord], starts: list[int], begin: int, end: int) -> list[Box]:
    """One box per line for the characters [begin, end) of the joined page text."""
    lines: dict[tuple[int, int], list[float]] = {}
    for word, start in zip(words, starts):
        length = len(word.text)
        first, last = max(begin, start) - start, min(end, start + length) - start
        if last <= 0 or first >= length:
            continue
        width = word.x1 - word.x0
        x0, x1 = word.x0 + width * first / length, word.x0 + width * last / length
        box = lines.setdefault((word.block, word.line), [x0, word.y0, x1, word.y1])
        box[:] = [min(box[0], x0), min(box[1], word.y0), max(box[2], x1), max(box[3], word.y1)]
    return [tuple(box) for box in lines.values()]
