"""Where every page and word of the open document sits, in scene points, independent of any widget.

Pages are stacked top to bottom, centred on the widest page, ``PAGE_GAP`` points apart (the scene is
in PDF points; the view's transform is the zoom). Look-ups are binary searches over the page tops and,
within a page, over its words' lines, so a 1,000-page document costs no more per mouse move than a
short one. The view (app/gui/pdf_view.py) only draws what this model says.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

PAGE_GAP = 12.0  # points between pages


class PageWord(NamedTuple):
    """A word on a page, box in PDF points; ``block`` and ``line`` are PyMuPDF's reading-order numbers."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    block: int
    line: int


class PageLayout:
    """Page rectangles in scene points and the words of each page (as they arrive from the PDF worker)."""

    def __init__(self, page_sizes: list[tuple[float, float]] | None = None) -> None:
        self.reset(page_sizes)

    def reset(self, page_sizes: list[tuple[float, float]] | None = None) -> None:
        """Lay out a new document (no pages: no document), forgetting the words of the old one."""
        self.sizes = list(page_sizes or [])
        self.widest = max((width for width, _ in self.sizes), default=0.0)
        self.tops: list[float] = []
        y = 0.0
        for _, height in self.sizes:
            self.tops.append(y)
            y += height + PAGE_GAP
        self.height = y
        self.words: dict[int, list[PageWord]] = {}
        self._word_rows: dict[int, list[float] | None] = {}  # word bottoms, None when not in top-down order

    def __len__(self) -> int:
        return len(self.sizes)

    def page_origin(self, page: int) -> tuple[float, float]:
        """Scene position of the page's top-left corner."""
        return (self.widest - self.sizes[page][0]) / 2, self.tops[page]

    def scene_rect(self) -> tuple[float, float, float, float]:
        """The whole document with a gap of margin all round."""
        return -PAGE_GAP, -PAGE_GAP, self.widest + 2 * PAGE_GAP, self.height + PAGE_GAP

    def page_at(self, y: float) -> int:
        """The page whose band (the page and the gap below it) holds scene height ``y``, clamped to the document."""
        if not self.sizes:
            return 0
        return max(0, min(len(self.sizes) - 1, bisect_right(self.tops, y) - 1))

    def pages_between(self, top: float, bottom: float) -> range:
        """Pages that intersect the scene band [top, bottom]."""
        if not self.sizes or bottom < 0 or top > self.height:
            return range(0)
        first = self.page_at(top)
        if top > self.tops[first] + self.sizes[first][1]:  # in the gap below ``first``
            first += 1
        return range(first, self.page_at(bottom) + 1)

    def set_words(self, page: int, words: list[PageWord]) -> None:
        self.words[page] = list(words)
        bottoms = [word.y1 for word in self.words[page]]
        in_order = all(later >= earlier - 1 for earlier, later in zip(bottoms, bottoms[1:]))
        self._word_rows[page] = bottoms if in_order else None

    def word_at(self, page: int, x: float, y: float, nearest: bool = True) -> int | None:
        """Index of the word of ``page`` under the page point (x, y), or the nearest one (same line preferred);
        None when the page has no words (yet), or when nothing is under the point and ``nearest`` is False."""
        words = self.words.get(page) or []
        if not words:
            return None
        best, best_distance = None, None
        for index in self._candidates(page, y):
            word = words[index]
            dx = max(word.x0 - x, 0, x - word.x1)
            dy = max(word.y0 - y, 0, y - word.y1)
            distance = dx * dx + 4 * dy * dy  # prefer the same line
            if best_distance is None or distance < best_distance:
                best, best_distance = index, distance
        if best is not None and (nearest or best_distance == 0):
            return best
        return None

    def _candidates(self, page: int, y: float) -> range:
        """Words whose line is near ``y``: words come in reading order, so their bottoms mostly rise with the
        index; a window of the sorted bottoms around ``y`` finds the line, and multi-column pages (where the
        order jumps back up) fall back to every word."""
        bottoms = self._word_rows.get(page)
        if bottoms is None:
            return range(len(self.words.get(page) or []))
        at = bisect_right(bottoms, y)
        return range(max(0, at - 40), min(len(bottoms), at + 40))
