"""The words of pages the engine recognised (OCR), for the viewer's selection, copy and find.

A scanned page has no text layer, so PyMuPDF gives the viewer no words and ``search_for`` finds nothing there.
The engine's ingest has the page's OCR words with boxes in page coordinates; these helpers turn them into the
viewer's ``PageWord``s and search them, without Qt, so both the engine worker (which makes the words) and the PDF
worker (which searches them) can use them in their own threads.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right

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
    inside a word gets the matching part of the word's box (OCR boxes run from the first to the last character).

    OCR does not always split words where the page has a space: it cuts "read.fwf" into "read." and "fwf". So a
    gap between two recognised words next to punctuation may or may not be a space of ``text``; a gap between two
    letters or digits must be one ("the" is not found in "with empty"), and a space of ``text`` must fall on a
    gap ("the mall" does not match "them all")."""
    pieces = _fold(text).split()
    if not pieces or not words:
        return []
    query = "".join(pieces)
    spaces, position = set(), 0  # offsets in ``query`` where ``text`` has a space
    for piece in pieces[:-1]:
        position += len(piece)
        spaces.add(position)
    starts, gaps, position = [], set(), 0  # each word's offset in the gapless page text; offsets of word gaps
    for word in words:
        starts.append(position)
        position += len(word.text)
        gaps.add(position)
    page_text = _fold("".join(word.text for word in words))
    hard = sorted(gap for gap in gaps if 0 < gap < len(page_text)
                  and page_text[gap - 1].isalnum() and page_text[gap].isalnum())  # gaps that must be spaces
    boxes: list[Box] = []
    at = page_text.find(query)
    while at >= 0:
        inside = hard[bisect_right(hard, at):bisect_left(hard, at + len(query))]
        if all(at + space in gaps for space in spaces) and all(gap - at in spaces for gap in inside):
            boxes.extend(_hit_boxes(words, starts, at, at + len(query)))
            at = page_text.find(query, at + len(query))
        else:
            at = page_text.find(query, at + 1)
    return boxes


def _hit_boxes(words: list[PageWord], starts: list[int], begin: int, end: int) -> list[Box]:
    """One box per line for the characters [begin, end) of the page text joined without gaps."""
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
