"""Optical character recognition of pages without a text layer (scans), offline, on the CPU.

The models are PP-OCRv6 "small" text detection and recognition (one multilingual model: English and the other
Latin-alphabet languages, Chinese, Japanese), the ONNX files that ship inside the ``rapidocr`` wheel, run with
onnxruntime. rapidocr's own pipeline is not used: it needs OpenCV (~150 MB more in the packaged app), and the
few image steps it takes from OpenCV are done here with numpy and PyMuPDF (engine/ingest/ocr_regions.py).

Recognition gives each word a box in page coordinates: the recogniser emits every character at a time step
whose position along the line is known, so a word's box runs from its first to its last character.
Nothing here is imported, and no model is loaded, until a page needs OCR.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pymupdf

from ..errors import CancelledError, DocFocusError
from .ocr_regions import Region, find_regions, reading_order

ENGINE_ID = "PP-OCRv6-small/onnx"
MODEL_FILES = ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx")
DET_LONG_SIDE = 1920  # detector input, pixels on the page's long side (the reference caps at 2000)
REC_DPI = 300  # the page is sampled at this resolution for recognition
REC_MAX_SIDE = 5000  # but never larger than this many pixels (posters, A0 plans)
REC_HEIGHT, REC_MIN_WIDTH, REC_BATCH = 48, 320, 8

# Scripts the recogniser may output per language setting (characters outside are masked before decoding, so a
# Latin page cannot come out with a look-alike CJK glyph or full-width punctuation).
_LATIN = ((0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x1E00, 0x1EFF), (0x2010, 0x205E), (0x20A0, 0x20CF),
          (0x2100, 0x214F), (0x2190, 0x22FF))  # with Greek letters, arrows and math operators
_CJK = ((0x3000, 0x303F), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0xFF00, 0xFFEF))
_KANA = ((0x3040, 0x30FF), (0x31F0, 0x31FF))
# Full-width Latin letters, digits and punctuation (how CJK fonts set them) read as their ASCII forms, so a
# search for "Library" finds "Ｌibrary".
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
SCRIPTS = {"auto": None, "latin": _LATIN, "chinese": _LATIN + _CJK, "japanese": _LATIN + _CJK + _KANA}


class OcrUnavailableError(DocFocusError):
    """The OCR models or onnxruntime are not installed."""


@dataclass(frozen=True)
class OcrWord:
    """A recognised word: box in PDF points, block and line numbers (reading order), mean character confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    block: int
    line: int
    confidence: float


def model_folder() -> Path:
    """Where the ONNX files are: ``DOCFOCUS_OCR_MODELS`` (only there, when set), else the packaged app's copy
    or the rapidocr wheel (found without importing rapidocr, whose own code needs OpenCV)."""
    override = os.environ.get("DOCFOCUS_OCR_MODELS")
    candidates = [Path(override)] if override else []
    if getattr(sys, "frozen", False) and not override:
        candidates.append(Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "ocr-models")
    spec = None if override else importlib.util.find_spec("rapidocr")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(Path(list(spec.submodule_search_locations)[0]) / "models")
    for folder in candidates:
        if all((folder / name).is_file() for name in MODEL_FILES):
            return folder
    raise OcrUnavailableError("The OCR models are not installed, so scanned pages cannot be read.",
                              "Install them with: pip install --no-deps rapidocr==3.10.0")


class Recognizer:
    """Detects text lines on a rendered page and reads them; one instance holds both ONNX sessions."""

    def __init__(self, languages: str = "auto") -> None:
        if languages not in SCRIPTS:
            raise DocFocusError(f"Unknown OCR language {languages!r}; use one of {', '.join(SCRIPTS)}.")
        folder = model_folder()
        try:
            import onnxruntime
        except ImportError as error:
            raise OcrUnavailableError("onnxruntime is not installed, so scanned pages cannot be read.",
                                      "Install it with: pip install onnxruntime") from error
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initialisers are not the user's concern
        self._det = onnxruntime.InferenceSession(str(folder / MODEL_FILES[0]), options,
                                                 providers=["CPUExecutionProvider"])
        self._rec = onnxruntime.InferenceSession(str(folder / MODEL_FILES[1]), options,
                                                 providers=["CPUExecutionProvider"])
        characters = self._rec.get_modelmeta().custom_metadata_map["character"].splitlines()
        self._chars = np.array(["", *characters, " "], dtype=object)  # CTC blank first, space last
        self._allowed = _allowed_mask(self._chars, SCRIPTS[languages])
        self.languages = languages

    def read_page(self, page: pymupdf.Page, should_stop: Callable[[], bool] | None = None) -> list[OcrWord]:
        """The words on ``page`` in reading order, with boxes in the page's (unrotated) coordinates."""
        return self.read(render(page), should_stop)

    def read(self, scan: PageScan, should_stop: Callable[[], bool] | None = None) -> list[OcrWord]:
        """The words of a rendered page (``render``); this step needs no PyMuPDF, so a caller that shares
        PyMuPDF with a viewer thread holds its lock only while rendering."""
        regions = find_regions(self._detect(scan.detect))
        if not regions:
            return []
        regions = [region.scaled(scan.rec_zoom / scan.det_zoom) for region in regions]
        lines = self._recognise(scan.recognise, regions, should_stop)
        boxes = [[(pymupdf.Rect(box) * scan.to_page) for box, _, _ in line] for line in lines]
        kept = [i for i, line in enumerate(lines) if line]
        words = []
        for block_no, block in enumerate(reading_order([_union(boxes[i]) for i in kept])):
            for line_no, line in enumerate(block):
                for text_line in line:
                    index = kept[text_line]
                    for rect, (_, text, confidence) in zip(boxes[index], lines[index]):
                        words.append(OcrWord(rect.x0, rect.y0, rect.x1, rect.y1, text, block_no,
                                             block_no * 10_000 + line_no, confidence))
        return words

    def _detect(self, image: np.ndarray) -> np.ndarray:
        """(H, W) text probability of a gray page image; the input is padded to multiples of 32 with paper."""
        height, width = image.shape
        padded = np.full((-(-height // 32) * 32, -(-width // 32) * 32), 255, dtype=np.uint8)
        padded[:height, :width] = image
        x = (padded.astype(np.float32) / 255 - 0.5) / 0.5
        x = np.broadcast_to(x, (1, 3, *x.shape)).copy()  # (1, 3, H, W), gray in every channel
        prob = self._det.run(None, {self._det.get_inputs()[0].name: x})[0]  # (1, 1, H, W)
        return prob[0, 0, :height, :width]

    def _recognise(self, image: np.ndarray, regions: list[Region], should_stop) -> list[list[tuple]]:
        """Per region, its words as (pixel box, text, confidence); batches of similar width."""
        paper = np.pad(image, 1, constant_values=255).astype(np.float32)  # once per page: sampling reads it often
        crops = [_crop(paper, region) for region in regions]
        order = np.argsort([crop.shape[1] for crop in crops], kind="stable")
        lines: list[list[tuple]] = [[] for _ in regions]
        for first in range(0, len(order), REC_BATCH):
            if should_stop and should_stop():
                raise CancelledError("recognising the scanned pages")
            batch = order[first:first + REC_BATCH]
            width = max(REC_MIN_WIDTH, max(crops[i].shape[1] for i in batch))
            x = np.zeros((len(batch), 3, REC_HEIGHT, width), dtype=np.float32)  # padding is 0 after normalising
            for row, i in enumerate(batch):
                x[row, :, :, : crops[i].shape[1]] = (crops[i].astype(np.float32) / 255 - 0.5) / 0.5
            probs = self._rec.run(None, {self._rec.get_inputs()[0].name: x})[0]  # (N, T, classes)
            for row, i in enumerate(batch):
                lines[i] = self._words(probs[row], width / probs.shape[1], crops[i].shape[1], regions[i])
        return lines

    def _words(self, probs: np.ndarray, step: float, valid: int, region: Region) -> list[tuple]:
        """CTC-decode one line; each word's box spans its characters' time steps along the region."""
        if self._allowed is not None:
            probs = probs * self._allowed
        best, confidence = probs.argmax(axis=1), probs.max(axis=1)
        emitted = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
        steps = np.nonzero(emitted & ((np.arange(len(best)) + 0.5) * step < valid))[0]
        if len(steps) == 0:
            return []
        centres = (steps + 0.5) * step
        pitch = (centres[-1] - centres[0]) / (len(steps) - 1) if len(steps) > 1 else valid
        words, current = [], []
        for k, t in enumerate(steps):
            if self._chars[best[t]] == " ":
                words, current = _close_word(words, current), []
            else:
                current.append((self._chars[best[t]], centres[k], confidence[t]))
        words = _close_word(words, current)
        scale = region.length / valid
        out = []
        for text, left, right, score in words:
            # CTC emits a character a little after its centre: measured on rendered scans, the first character
            # starts 0.75 of a pitch before its step and the last ends 0.35 after.
            u0, u1 = max(0.0, left - 0.75 * pitch) * scale, min(valid, right + 0.35 * pitch) * scale
            u = np.array([u0, u1, u1, u0]) - region.length / 2
            v = np.array([-1, -1, 1, 1]) * region.height / 2
            points = region.corners(u, v)
            out.append(((points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()), text,
                        score))
        return out


def _close_word(words: list, chars: list) -> list:
    if chars:
        words.append(("".join(c for c, _, _ in chars).translate(_FULL_WIDTH), chars[0][1], chars[-1][1],
                      float(np.mean([p for _, _, p in chars]))))
    return words


def _allowed_mask(chars: np.ndarray, ranges) -> np.ndarray | None:
    """(classes,) 1 for characters of the chosen scripts (and the CTC blank, space), 0 elsewhere."""
    if ranges is None:
        return None
    codes = np.array([ord(c[0]) if c else 0 for c in chars])
    allowed = np.zeros(len(chars), dtype=np.float32)
    for low, high in ranges:
        allowed[(codes >= low) & (codes <= high)] = 1
    allowed[0] = allowed[-1] = 1
    return allowed


@dataclass
class PageScan:
    """A page rendered for OCR: gray images for the detector and the recogniser, their zooms (pixels per point)
    and the matrix from recogniser pixels to page coordinates."""

    detect: np.ndarray
    recognise: np.ndarray
    det_zoom: float
    rec_zoom: float
    to_page: pymupdf.Matrix


def render(page: pymupdf.Page) -> PageScan:
    """Render ``page`` for ``Recognizer.read`` (the only OCR step that uses PyMuPDF)."""
    long_side = max(page.rect.width, page.rect.height)
    det_zoom = DET_LONG_SIDE / long_side
    rec_zoom = min(REC_DPI / 72, REC_MAX_SIDE / long_side)
    to_page = ~(page.rotation_matrix * pymupdf.Matrix(rec_zoom, rec_zoom))
    return PageScan(_render(page, det_zoom), _render(page, rec_zoom), det_zoom, rec_zoom, to_page)


def _render(page: pymupdf.Page, zoom: float) -> np.ndarray:
    """The page as a (H, W) uint8 gray image at ``zoom`` pixels per point."""
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
    return np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.h, pixmap.stride)[:, : pixmap.w]


def _crop(padded: np.ndarray, region: Region) -> np.ndarray:
    """The region straightened and scaled to the recogniser's height, bilinear, from the page image ``padded``
    by one pixel of paper (float32), so samples at the edge read white."""
    width = int(np.clip(round(REC_HEIGHT * region.length / max(region.height, 1.0)), 8, 60 * REC_HEIGHT))
    u = (np.arange(width) + 0.5) * region.length / width - region.length / 2
    v = (np.arange(REC_HEIGHT) + 0.5) * region.height / REC_HEIGHT - region.height / 2
    points = region.corners(u[None, :], v[:, None]) - 0.5  # (48, W, 2), pixel centres at integers
    x, y = points[..., 0], points[..., 1]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    xi, yi = np.clip(x0 + 1, 0, padded.shape[1] - 2), np.clip(y0 + 1, 0, padded.shape[0] - 2)
    top = padded[yi, xi] * (1 - fx) + padded[yi, xi + 1] * fx
    bottom = padded[yi + 1, xi] * (1 - fx) + padded[yi + 1, xi + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.uint8)


def _union(rects: list[pymupdf.Rect]) -> tuple[float, float, float, float]:
    return (min(r.x0 for r in rects), min(r.y0 for r in rects), max(r.x1 for r in rects), max(r.y1 for r in rects))
