"""OCR of scanned pages (engine/ingest/ocr.py): accuracy against the known text of R's manuals, speed, and needles in a
scanned 10-page document against the same document born-digital.

1. Accuracy: pages of R's manuals rendered to gray images at 150 and 300 dpi, turned by up to half a degree,
   with scanner noise, as image-only PDF pages; OCR'd text against the page's own text layer, both NFKC-normalised
   (ligatures, typographic quotes and dashes as ASCII) with words joined by single spaces. Character and word
   accuracy are 1 - edit distance / true length, over characters and over words.
2. Speed: pages per minute of the whole page step (render, detect, recognise, boxes) on this CPU.
3. Needles: 10-page haystacks of manual prose with one needle sentence each (on a different page per case), asked
   born-digital and as a 300-dpi scan (turned, noisy) with the bundled model; answer accuracy and evidence hit@3.
"""
from __future__ import annotations

import difflib
import json
import os
import time
import unicodedata
from pathlib import Path

import numpy as np
import pymupdf

from bench.common import contains_answer, haystack_sentences, make_engine, r_manual
from bench.needle import needle_case
from engine.ingest.extract import file_sha256

MANUALS = ("R-intro.pdf", "R-data.pdf", "R-lang.pdf", "R-admin.pdf")
_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2212": "-", "\u2013": "-",
                        "\u2014": "-", "\u2026": "..."})


def normalise(words: list[str]) -> list[str]:
    return [w for w in (unicodedata.normalize("NFKC", w).translate(_ASCII).strip() for w in words) if w]


def edit_distance(truth, read) -> int:
    """Levenshtein distance of two sequences; one numpy row per item of ``truth`` (insertions by a running min)."""
    read_ids = np.array([hash(x) for x in read], dtype=np.int64)
    row = np.arange(len(read) + 1)
    offsets = np.arange(len(read) + 1)
    for i, item in enumerate(truth, start=1):
        replace = row[:-1] + (read_ids != hash(item))
        best = np.concatenate([[i], np.minimum(row[1:] + 1, replace)])
        row = np.minimum.accumulate(best - offsets) + offsets
    return int(row[-1])


def scan(page: pymupdf.Page, dpi: int, angle: float, noise: float, seed: int) -> pymupdf.Document:
    """A one-page PDF holding ``page`` as a gray scan (turned by ``angle`` degrees, Gaussian noise)."""
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(angle), colorspace=pymupdf.csGRAY)
    image = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.h, pixmap.stride)[:, :pixmap.w]
    noisy = image + np.random.default_rng(seed).normal(0, noise, image.shape)
    data = np.ascontiguousarray(np.clip(noisy, 0, 255).astype(np.uint8)).tobytes()
    document = pymupdf.open()
    new = document.new_page(width=page.rect.width, height=page.rect.height)
    new.insert_image(new.rect, pixmap=pymupdf.Pixmap(pymupdf.csGRAY, pixmap.w, pixmap.h, data, False))
    return document


def sample_pages(count: int) -> list[tuple[str, int]]:
    """``count`` pages spread evenly over the manuals' body text: past the contents, at least 150 words, and
    not an index or contents page (whose dot leaders would be most of the "words")."""
    chosen: list[tuple[str, int]] = []
    per_manual = -(-count // len(MANUALS))
    for name in MANUALS:
        with pymupdf.open(r_manual(name)) as pdf:
            body = [n for n in range(6, pdf.page_count) if _is_prose(pdf[n].get_text("words"))]
            chosen += [(name, body[int(k)]) for k in np.linspace(0, len(body) - 1, per_manual)]
    return chosen[:count]


def _is_prose(words: list) -> bool:
    leaders = sum(not any(c.isalnum() for c in w[4]) for w in words)
    return len(words) >= 150 and leaders < 0.1 * len(words)


def accuracy(pages: list[tuple[str, int]], dpi: int, language: str) -> dict:
    from engine.ingest.ocr import Recognizer

    recognizer = Recognizer(language)
    rows, seconds = [], 0.0
    for k, (name, number) in enumerate(pages):
        with pymupdf.open(r_manual(name)) as pdf:
            page = pdf[number]
            truth = normalise([w[4] for w in page.get_text("words")])
            scanned = scan(page, dpi, angle=0.5 * (-1) ** k, noise=8.0, seed=k)
        started = time.perf_counter()
        read = normalise([w.text for w in recognizer.read_page(scanned[0])])
        seconds += time.perf_counter() - started
        chars_truth, chars_read = " ".join(truth), " ".join(read)
        rows.append({"manual": name, "page": number + 1, "words": len(truth),
                     "char_errors": edit_distance(chars_truth, chars_read), "chars": len(chars_truth),
                     "word_errors": edit_distance(truth, read)})
        print(f"  {dpi} dpi {language} {name} p{number + 1}: word acc "
              f"{1 - rows[-1]['word_errors'] / len(truth):.3f}", flush=True)
    return {"dpi": dpi, "language": language, "pages": len(rows),
            "char_accuracy": round(1 - sum(r["char_errors"] for r in rows) / sum(r["chars"] for r in rows), 4),
            "word_accuracy": round(1 - sum(r["word_errors"] for r in rows) / sum(r["words"] for r in rows), 4),
            "worst_page_word_accuracy": round(min(1 - r["word_errors"] / r["words"] for r in rows), 4),
            "pages_per_minute": round(60 * len(rows) / seconds, 2), "load_average": round(os.getloadavg()[0], 2),
            "rows": rows}


class SharedPageStore:
    """An OcrStore for the needle documents: they share every page but the needle's, and a page image that was
    recognised once is not recognised again (OCR of the same image gives the same words)."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, int], str] = {}
        self.words: dict[str, list] = {}

    def get_ocr(self, sha256: str, page: int, languages: str) -> list | None:
        return self.words.get(self.keys[(sha256, page)])

    def put_ocr(self, sha256: str, page: int, languages: str, engine: str, words: list) -> None:
        self.words[self.keys[(sha256, page)]] = words


def haystack_pages(engine, pages: int = 10, tokens_per_page: int = 350) -> list[list[str]]:
    """Sentences of manual prose grouped into ``pages`` pages of about ``tokens_per_page`` tokens."""
    tokenizer = engine.loaded.tokenizer
    grouped, page, count = [], [], 0
    for sentence in haystack_sentences()[200:]:
        page.append(sentence)
        count += len(tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
        if count >= tokens_per_page:
            grouped, page, count = grouped + [page], [], 0
            if len(grouped) == pages:
                return grouped
    raise SystemExit("not enough manual prose for the needle haystack")


def lay_out(pages: list[list[str]]) -> pymupdf.Document:
    document = pymupdf.open()
    for sentences in pages:
        page = document.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(60, 60, 535, 782), " ".join(sentences), fontsize=10)
    return document


def needle_case_files(engine, folder: Path, cases: int, store: SharedPageStore) -> list[dict]:
    """Per case, a 10-page haystack with one needle (on page ``case % 10``), born-digital and as a 300-dpi scan
    (turned, noisy); the scans share the haystack pages' images."""
    pages = haystack_pages(engine)
    hay = lay_out(pages)
    hay_scans = [scan(hay[n], 300, 0.4 * (-1) ** n, 8.0, 100 + n) for n in range(len(pages))]
    made = []
    for index in range(cases):
        needle, question, code = needle_case(index)
        where = index % len(pages)
        text = [list(p) for p in pages]
        text[where].insert(round((0.2 + 0.6 * ((index * 0.37) % 1)) * len(text[where])), needle)
        born = lay_out(text)
        born.save(folder / f"needle-{index}-born.pdf")
        scanned = pymupdf.open()
        for n in range(len(pages)):
            scanned.insert_pdf(scan(born[n], 300, 0.4 * (-1) ** n, 8.0, 100 + n) if n == where else hay_scans[n])
        scanned.save(folder / f"needle-{index}-scan.pdf", deflate=True)
        sha = file_sha256(folder / f"needle-{index}-scan.pdf")
        store.keys.update({(sha, n): f"case-{index}" if n == where else f"hay-{n}" for n in range(len(pages))})
        made.append({"needle": needle, "question": question, "code": code, "page": where + 1,
                     "born": folder / f"needle-{index}-born.pdf", "scan": folder / f"needle-{index}-scan.pdf"})
    return made


def needle_words(doc, needle: str) -> set[int]:
    """Word indices of the needle sentence in the document, found by alignment (OCR may misread a word)."""
    words = [w.text for w in doc.ingested.words]
    target = needle.split()
    match = difflib.SequenceMatcher(None, words, target, autojunk=False).find_longest_match(0, len(words), 0,
                                                                                           len(target))
    start = match.a - match.b
    return set(range(max(0, start), min(len(words), start + len(target)))) if match.size >= 3 else set()


def needles(folder: Path, cases: int) -> dict:
    from engine.ingest.extract import ingest_pdf

    engine = make_engine(answer={"max_new_tokens": 24})
    store = SharedPageStore()
    rows = []
    for case in needle_case_files(engine, folder, cases, store):
        for kind in ("born", "scan"):
            started = time.perf_counter()
            ingested = ingest_pdf(case[kind], ocr_store=store)
            ingest_s = time.perf_counter() - started
            doc = engine.open_document(ingested)
            answer = engine.ask(doc, case["question"])
            spot = needle_words(doc, case["needle"])
            rows.append({"kind": kind, "page": case["page"], "code": case["code"], "answer": answer.answer[:100],
                         "correct": contains_answer(answer.answer, [case["code"]]), "tokens": doc.total_tokens,
                         "evidence_hit": any(any(item.words[0] <= i < item.words[1] for i in spot)
                                             for item in answer.evidence[:3]),
                         "needle_read_exactly": case["needle"] in " ".join(w.text for w in ingested.words),
                         "ingest_s": round(ingest_s, 2), "notice": ingested.notice()})
            engine.forget(doc)
        print(f"  needle on page {case['page']}: " + " ".join(
            f"{r['kind']} {'Y' if r['correct'] else '-'}/{'E' if r['evidence_hit'] else '-'}" for r in rows[-2:]),
            flush=True)
    return {kind: summarize_needles([r for r in rows if r["kind"] == kind]) for kind in ("born", "scan")} | \
        {"rows": rows}


def summarize_needles(rows: list[dict]) -> dict:
    return {"cases": len(rows), "tokens": int(np.mean([r["tokens"] for r in rows])),
            "accuracy": round(float(np.mean([r["correct"] for r in rows])), 3),
            "evidence_hit3": round(float(np.mean([r["evidence_hit"] for r in rows])), 3),
            "needles_read_exactly": int(sum(r["needle_read_exactly"] for r in rows))}


def run(quick: bool, out_dir: Path) -> dict:
    folder = out_dir.parent / "tmp" / "ocr-pdfs"  # bench/results/tmp is not committed
    folder.mkdir(parents=True, exist_ok=True)
    needle_results = needles(folder, 4 if quick else 10)
    pages = sample_pages(8 if quick else 24)
    settings = [(300, "auto"), (150, "auto")] + ([] if quick else [(150, "latin")])
    runs = [accuracy(pages, dpi, language) for dpi, language in settings]
    (out_dir / "ocr-pages.json").write_text(json.dumps(runs, indent=1))
    summary = [{k: v for k, v in r.items() if k != "rows"} for r in runs]
    return {"accuracy": summary, "needles": needle_results, "markdown": markdown(summary, needle_results)}


def markdown(summary: list[dict], needle_results: dict) -> str:
    text = ("OCR accuracy on rendered R manual pages (turned up to 0.5 degrees, noise sigma 8), PP-OCRv6 small, "
            "this CPU\n\n| dpi | language | pages | char accuracy | word accuracy | worst page (words) | "
            "pages/min | load |\n|---|---|---|---|---|---|---|---|\n")
    for r in summary:
        text += (f"| {r['dpi']} | {r['language']} | {r['pages']} | {r['char_accuracy']:.4f} | "
                 f"{r['word_accuracy']:.4f} | {r['worst_page_word_accuracy']:.3f} | {r['pages_per_minute']} | "
                 f"{r['load_average']} |\n")
    text += ("\nNeedles in a 10-page document (one needle per case, on page case % 10), bundled model, default "
             "attention; the scan is 300 dpi, turned 0.4 degrees, noisy\n\n"
             "| document | cases | tokens | accuracy | evidence hit@3 | needle sentence read exactly |\n"
             "|---|---|---|---|---|---|\n")
    for kind, name in (("born", "born-digital"), ("scan", "scanned")):
        r = needle_results[kind]
        text += (f"| {name} | {r['cases']} | {r['tokens']} | {r['accuracy']:.2f} | {r['evidence_hit3']:.2f} | "
                 f"{r['needles_read_exactly']}/{r['cases']} |\n")
    return text
