"""Shared benchmark helpers: the engine on the bundled model, haystack text, PDFs from text, scoring."""
from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pymupdf

R_MANUALS = Path("/usr/share/R/doc/manual")


def r_manual(name: str) -> Path:
    """A PDF from Debian's r-doc-pdf (installed on demand: apt-get install r-doc-pdf)."""
    path = R_MANUALS / name
    if not path.exists():
        found = subprocess.run(["dpkg", "-L", "r-doc-pdf"], capture_output=True, text=True).stdout.split()
        match = [p for p in found if p.endswith("/" + name)]
        if not match:
            raise SystemExit(f"{name} not found: install Debian's r-doc-pdf (apt-get install r-doc-pdf)")
        path = Path(match[0])
    return path


def make_engine(**parts):
    """An Engine on the bundled model (or DOCFOCUS_BENCH_MODEL, a model folder: ``python -m bench --model``), on
    the CPU unless DOCFOCUS_BENCH_DEVICE says otherwise, in a private data folder; DOCFOCUS_BENCH_THREADS pins
    torch's thread count (1 on a machine that other work keeps busy)."""
    os.environ.setdefault("DOCFOCUS_HOME", str(Path(__file__).parent / "results" / ".home"))
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    threads = os.environ.get("DOCFOCUS_BENCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    device = os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")
    settings = EngineSettings(model=os.environ.get("DOCFOCUS_BENCH_MODEL") or None, device=device).changed(**parts)
    engine = Engine(settings,
                    library=Library(Path(tempfile.mkdtemp(prefix="docfocus-bench-lib-")) / "library.sqlite"))
    engine.load()
    return engine


def haystack_sentences(seed: int = 0) -> list[str]:
    """Sentences of real manual prose (R's 'An Introduction to R' and 'R Language Definition')."""
    text = ""
    for name in ("R-intro.pdf", "R-lang.pdf"):
        with pymupdf.open(r_manual(name)) as pdf:
            text += " ".join(page.get_text() for page in pdf)
    text = re.sub(r"\s+", " ", text)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s.strip()) <= 300]
    return sentences


def fill_pages(paragraphs: list[str], words_per_page: int = 420) -> list[list[str]]:
    """Paragraphs grouped into pages of about ``words_per_page`` words (a page closes once it has that many)."""
    pages: list[list[str]] = []
    page: list[str] = []
    for paragraph in paragraphs:
        page.append(paragraph)
        if sum(len(p.split()) for p in page) >= words_per_page:
            pages.append(page)
            page = []
    return pages + ([page] if page else [])


def text_pdf(path: Path, paragraphs: list[str], words_per_page: int = 420) -> Path:
    """Lay paragraphs out on A4 pages (about ``words_per_page`` words each) with PyMuPDF."""
    document = pymupdf.open()
    pages = [" ".join(page) for page in fill_pages(paragraphs, words_per_page)]
    for body in pages:
        page = document.new_page(width=595, height=842)
        rect = pymupdf.Rect(40, 40, 555, 802)
        if page.insert_textbox(rect, body, fontsize=8) < 0:  # overflow: smaller font
            page.clean_contents()
            page = document[-1]
            page.insert_textbox(rect, body, fontsize=6)
    document.save(path)
    return path


def prose(engine, sentences: list[str], tokens: int, start: int = 0) -> list[str]:
    """Sentences from ``sentences[start:]`` adding up to about ``tokens`` tokens."""
    tokenizer = engine.loaded.tokenizer
    chosen, count = [], 0
    for sentence in sentences[start:]:
        count += len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
        if count > tokens:
            break
        chosen.append(sentence)
    return chosen


def to_paragraphs(chosen: list[str]) -> list[str]:
    """Sentences joined into paragraphs of 6."""
    return [" ".join(chosen[i:i + 6]) for i in range(0, len(chosen), 6)]


def haystack_pdf(engine, sentences: list[str], path: Path, tokens: int, start: int = 0, needle: str | None = None,
                 depth: float = 0.5) -> Path:
    """A PDF of real manual prose from ``sentences[start:]``, about ``tokens`` document tokens long, with an
    optional ``needle`` sentence at ``depth`` (0-1) of the text."""
    chosen = prose(engine, sentences, tokens, start)
    if needle:
        chosen.insert(round(depth * len(chosen)), needle)
    return text_pdf(path, to_paragraphs(chosen))


@dataclass
class Config:
    """One attention configuration to compare on the same document state (the answer reads the whole document)."""

    name: str
    mode: str = "dga"
    gamma: float = 0.1
    group_size: int = 16
    options: dict | None = None

    def apply(self, engine) -> None:

        engine.settings = engine.settings.changed(answer={"context": "document"}, attention={"mode": self.mode, "dga": {"gamma": self.gamma, "group_size": self.group_size, **dict(self.options or {})}})


def contains_answer(answer: str, expected: list[str]) -> bool:
    flat = answer.lower().replace(" ", "")
    return any(item.lower().replace(" ", "") in flat for item in expected)


def rng(seed: int) -> random.Random:
    return random.Random(seed)
