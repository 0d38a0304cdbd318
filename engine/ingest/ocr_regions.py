"""Text regions from a detector's probability map, and their reading order, in numpy alone.

The detector (DB, "differentiable binarization") marks the shrunken core of every text line; a line is a
connected component of that map, its box the component's oriented bounding rectangle grown back by the
"unclip" distance. OpenCV would do this in three calls, but it adds ~150 MB to the bundle, so components are
found here on row runs (run-length labelling with a vectorised union-find).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """An oriented text-line box in pixels: centre, angle (radians, x towards y), length along the line and
    height across it (both after unclipping), and the detector's mean probability inside it."""

    cx: float
    cy: float
    angle: float
    length: float
    height: float
    score: float

    def corners(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pixel (x, y) of points given in the box's frame (u along the line, v across, from the centre)."""
        cos, sin = np.cos(self.angle), np.sin(self.angle)
        return np.stack([self.cx + u * cos - v * sin, self.cy + u * sin + v * cos], axis=-1)

    def bbox(self) -> tuple[float, float, float, float]:
        half_u, half_v = self.length / 2, self.height / 2
        u, v = np.array([-half_u, half_u, half_u, -half_u]), np.array([-half_v, -half_v, half_v, half_v])
        points = self.corners(u, v)
        return (float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()),
                float(points[:, 1].max()))

    def scaled(self, factor: float) -> "Region":
        return Region(self.cx * factor, self.cy * factor, self.angle, self.length * factor, self.height * factor,
                      self.score)


def find_regions(prob: np.ndarray, threshold: float = 0.3, min_score: float = 0.5, unclip: float = 1.6,
                 min_side: float = 3.0) -> list[Region]:
    """Text lines in a (H, W) probability map: components of ``prob > threshold`` (8-connected, dilated by one
    pixel as the DB reference does), scored by their mean probability and grown by ``unclip``."""
    mask = prob > threshold
    mask[1:, :] |= mask[:-1, :]  # 2x2 dilation joins cores split by a pixel
    mask[:, 1:] |= mask[:, :-1]
    rows, starts, ends = _runs(mask)
    if len(rows) == 0:
        return []
    labels = _label_runs(rows, starts, ends, mask.shape[1])
    row_sums = np.concatenate([np.zeros((prob.shape[0], 1)), np.cumsum(prob, axis=1, dtype=np.float64)], axis=1)
    run_prob = row_sums[rows, ends] - row_sums[rows, starts]
    return _regions_from_runs(rows, starts, ends, labels, run_prob, min_score, unclip, min_side)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True: (row, start, end exclusive), in row-major order."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows, starts, ends


def _label_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """Component label (the smallest run index in it) of every run; runs touch 8-connected across rows."""
    stride = width + 2
    end_keys, start_keys = rows * stride + ends, rows * stride + starts
    # For run b in row r+1, the runs of row r that touch it are a contiguous range [lo, hi).
    lo = np.searchsorted(end_keys, (rows - 1) * stride + starts, side="left")
    hi = np.searchsorted(start_keys, (rows - 1) * stride + ends, side="right")
    counts = np.maximum(hi - lo, 0)
    below = np.repeat(np.arange(len(rows)), counts)
    above = np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    parent = np.arange(len(rows))
    while True:
        root_a, root_b = parent[above], parent[below]
        differ = root_a != root_b
        if not differ.any():
            return parent
        # Hooking the larger root under the smaller keeps parent[i] <= i, so no cycles form.
        np.minimum.at(parent, np.maximum(root_a, root_b)[differ], np.minimum(root_a, root_b)[differ])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _regions_from_runs(rows, starts, ends, labels, run_prob, min_score, unclip, min_side) -> list[Region]:
    ids, label = np.unique(labels, return_inverse=True)
    count = len(ids)
    n = (ends - starts).astype(np.float64)
    first, last, y = starts.astype(np.float64), (ends - 1).astype(np.float64), rows.astype(np.float64)
    sum_x = n * (first + last) / 2
    sum_xx = (_square_sum(last) - _square_sum(first - 1))
    pixels = np.bincount(label, n, count)
    mean_x = np.bincount(label, sum_x, count) / pixels
    mean_y = np.bincount(label, n * y, count) / pixels
    var_xx = np.bincount(label, sum_xx, count) / pixels - mean_x**2
    var_yy = np.bincount(label, n * y * y, count) / pixels - mean_y**2
    cov_xy = np.bincount(label, y * sum_x, count) / pixels - mean_x * mean_y
    mean_x, mean_y = mean_x + 0.5, mean_y + 0.5  # pixel i covers [i, i + 1): centres, as the corners below
    angle = 0.5 * np.arctan2(2 * cov_xy, var_xx - var_yy)
    # The line runs along whichever principal axis is nearer horizontal (a lone "1" is taller than wide).
    angle = np.where(angle > np.pi / 4, angle - np.pi / 2, np.where(angle < -np.pi / 4, angle + np.pi / 2, angle))
    score = np.bincount(label, run_prob, count) / pixels
    u_low, u_high, v_low, v_high = _extents(rows, starts, ends, label, mean_x, mean_y, angle, count)
    regions = []
    for i in range(count):
        length, height = u_high[i] - u_low[i], v_high[i] - v_low[i]
        if min(length, height) < min_side or score[i] < min_score:
            continue
        grow = length * height * unclip / (2 * (length + height))
        cos, sin = np.cos(angle[i]), np.sin(angle[i])
        mid_u, mid_v = (u_low[i] + u_high[i]) / 2, (v_low[i] + v_high[i]) / 2
        centre_x, centre_y = mean_x[i] + mid_u * cos - mid_v * sin, mean_y[i] + mid_u * sin + mid_v * cos
        regions.append(Region(float(centre_x), float(centre_y), float(angle[i]), float(length + 2 * grow),
                              float(height + 2 * grow), float(score[i])))
    return regions


def _square_sum(k: np.ndarray) -> np.ndarray:
    """0^2 + 1^2 + ... + k^2 (0 for k < 0)."""
    k = np.maximum(k, -1)
    return k * (k + 1) * (2 * k + 1) / 6


def _extents(rows, starts, ends, label, mean_x, mean_y, angle, count):
    """Min and max of each component's pixel corners along and across its angle."""
    cos, sin = np.cos(angle)[label], np.sin(angle)[label]
    u_low, v_low = np.full(count, np.inf), np.full(count, np.inf)
    u_high, v_high = np.full(count, -np.inf), np.full(count, -np.inf)
    for x, y in ((starts, rows), (ends, rows), (starts, rows + 1), (ends, rows + 1)):
        dx, dy = x - mean_x[label], y - mean_y[label]
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos
        np.minimum.at(u_low, label, u)
        np.maximum.at(u_high, label, u)
        np.minimum.at(v_low, label, v)
        np.maximum.at(v_high, label, v)
    return u_low, u_high, v_low, v_high


def reading_order(boxes: list[tuple[float, float, float, float]]) -> list[list[list[int]]]:
    """Blocks of lines of box indices, in reading order, by recursive XY-cut: a column gutter wider than the
    widest paragraph gap splits columns first, otherwise paragraph gaps split blocks top to bottom."""
    if not boxes:
        return []
    array = np.array(boxes, dtype=np.float64)
    line_height = float(np.median(array[:, 3] - array[:, 1]))
    return _cut(array, np.arange(len(boxes)), max(line_height, 1.0))


def _cut(boxes: np.ndarray, index: np.ndarray, line_height: float) -> list[list[list[int]]]:
    y_gap, y_at = _widest_gap(boxes[index, 1], boxes[index, 3])
    x_gap, x_at = _widest_gap(boxes[index, 0], boxes[index, 2])
    if x_gap >= line_height and x_gap > y_gap:
        left = boxes[index, 0] < x_at
        return _cut(boxes, index[left], line_height) + _cut(boxes, index[~left], line_height)
    if y_gap >= 0.7 * line_height:
        top = boxes[index, 1] < y_at
        return _cut(boxes, index[top], line_height) + _cut(boxes, index[~top], line_height)
    return [_lines(boxes, index)]


def _widest_gap(low: np.ndarray, high: np.ndarray) -> tuple[float, float]:
    """Widest empty stretch between intervals [low, high) and where it ends (0, 0 when there is none)."""
    order = np.argsort(low)
    reach = np.maximum.accumulate(high[order])
    gaps = low[order][1:] - reach[:-1]
    if len(gaps) == 0 or gaps.max() <= 0:
        return 0.0, 0.0
    best = int(np.argmax(gaps))
    return float(gaps[best]), float(low[order][best + 1])


def _lines(boxes: np.ndarray, index: np.ndarray) -> list[list[int]]:
    """A block's boxes grouped into lines (vertical centres within half a line height), top to bottom."""
    centre = (boxes[index, 1] + boxes[index, 3]) / 2
    height = boxes[index, 3] - boxes[index, 1]
    lines: list[list[int]] = []
    line_centre = 0.0
    for i in np.argsort(centre, kind="stable"):
        if lines and abs(centre[i] - line_centre) <= 0.5 * height[i]:
            lines[-1].append(int(index[i]))
        else:
            lines.append([int(index[i])])
            line_centre = centre[i]
    return [sorted(line, key=lambda k: boxes[k, 0]) for line in lines]
