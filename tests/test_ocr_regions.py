"""Text regions from a probability map (run labelling, oriented boxes) and reading order, on arrays made here."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.ingest.ocr_regions import _label_runs, _runs, find_regions, reading_order


def flood_fill_count(mask: np.ndarray) -> int:
    """Components of an 8-connected mask, the slow obvious way."""
    seen = np.zeros_like(mask, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count += 1
        queue = deque([start])
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
    return count


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 14), st.integers(1, 14))))
def test_run_labels_match_flood_fill(mask):
    rows, starts, ends = _runs(mask)
    if len(rows) == 0:
        assert not mask.any()
        return
    labels = _label_runs(rows, starts, ends, mask.shape[1])
    assert len(np.unique(labels)) == flood_fill_count(mask)


def test_lines_become_oriented_boxes():
    prob = np.zeros((200, 400), dtype=np.float32)
    prob[20:30, 50:350] = 0.9  # a straight line core
    yy, xx = np.mgrid[0:200, 0:400]
    angle = np.deg2rad(3)
    u = (xx - 200) * np.cos(angle) + (yy - 120) * np.sin(angle)
    v = -(xx - 200) * np.sin(angle) + (yy - 120) * np.cos(angle)
    prob[(np.abs(u) < 140) & (np.abs(v) < 6)] = 0.8  # a line turned by 3 degrees
    prob[180:182, 10:12] = 0.9  # a speck: too small to be text
    regions = sorted(find_regions(prob), key=lambda r: r.cy)
    assert len(regions) == 2
    straight, turned = regions
    assert straight.angle == pytest.approx(0, abs=0.01) and straight.cx == pytest.approx(200, abs=1)
    assert straight.length > 300 and 10 < straight.height < 30  # grown back from the core by the unclip ratio
    assert turned.angle == pytest.approx(angle, abs=0.01) and turned.cy == pytest.approx(120, abs=1)
    assert turned.length == pytest.approx(280 + 2 * (turned.height - 12) / 2, rel=0.05)


def test_faint_regions_are_dropped():
    prob = np.zeros((50, 200), dtype=np.float32)
    prob[20:30, 20:180] = 0.4  # above the binarisation threshold, below the mean score a line needs
    assert find_regions(prob) == []


def test_columns_are_read_one_after_the_other():
    left = [(50, 100 + 20 * i, 280, 114 + 20 * i) for i in range(5)]
    right = [(320, 100 + 20 * i, 550, 114 + 20 * i) for i in range(5)]
    title = [(50, 40, 550, 60)]
    boxes = title + [box for pair in zip(left, right) for box in pair]  # interleaved, as detection returns them
    order = [index for block in reading_order(boxes) for line in block for index in line]
    assert [boxes[i] for i in order] == title + left + right


def test_paragraph_gap_starts_a_block_and_a_line_keeps_its_pieces():
    boxes = [(300, 100, 400, 114), (50, 101, 250, 115), (50, 120, 400, 134), (50, 170, 400, 184)]
    blocks = reading_order(boxes)
    assert blocks == [[[1, 0], [2]], [[3]]]
