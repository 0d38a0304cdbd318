"""Needle cases for the answer benchmark: a fact of one of several kinds, placed in real manual prose.

The haystack is R's manual prose (bench/common.py) laid out in pages; the needle is inserted as a paragraph
into one page without re-flowing the others, so the other pages, and the segments read from them, are the same
in every case of a length (stored segments are keyed by content: a case reads only the segments its needle
changed). Depths spread evenly over 0-100%.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from bench.common import fill_pages, haystack_sentences, prose, rng, text_pdf, to_paragraphs

START = 400  # first haystack sentence (R-intro's prose, after its front matter)
PLACES = ["red archive", "north tower", "glass library", "copper vault", "blue workshop", "east cellar",
          "silver studio", "green office", "stone chapel", "west garage", "amber lab", "quiet lounge"]
PEOPLE = ["Helena Marsh", "Tomas Ridley", "Amara Okafor", "Lukas Brenner", "Ines Valcourt", "Priya Raman"]
TOWNS = ["Arden", "Kelmsford", "Port Ellis", "Varnholm", "Dunmere", "Castel Nuovo"]
COLOURS = ["teal", "crimson", "ochre", "violet", "olive", "amber"]


def needle_case(index: int) -> tuple[str, str, list[str]]:
    """(needle sentence, question, accepted answers) of kind ``index % 6``."""
    r = rng(5000 + index)
    place, person, town = r.choice(PLACES), r.choice(PEOPLE), r.choice(TOWNS)
    kind = index % 6
    if kind == 0:
        code = f"{r.randint(1000, 9999)}-{r.randint(10, 99)}"
        return f"The access code for the {place} is {code}.", f"What is the access code for the {place}?", [code]
    if kind == 1:
        kilos = f"{r.randint(2, 9)},{r.randint(100, 999)}"
        return (f"The shipment sent to {town} weighed {kilos} kilograms.",
                f"How much did the shipment sent to {town} weigh?", [kilos, kilos.replace(",", "")])
    if kind == 2:
        return (f"The spring planning committee of {town} was chaired by {person}.",
                f"Who chaired the spring planning committee of {town}?", [person.split()[-1]])
    if kind == 3:
        year = str(r.randint(1921, 1999))
        return (f"The lantern festival of {town} was first held in {year}.",
                f"In which year was the lantern festival of {town} first held?", [year])
    if kind == 4:
        colour = r.choice(COLOURS)
        return (f"The door of the {place} is painted {colour}.", f"What colour is the door of the {place} painted?",
                [colour])
    ship = f"{r.choice(['Aurora', 'Meridian', 'Kestrel', 'Halcyon'])} {r.randint(2, 9)}"
    return (f"The research vessel that mapped the {town} reef was called the {ship}.",
            f"What was the research vessel that mapped the {town} reef called?", [ship])


def bench_engine(max_new_tokens: int):
    """An Engine on the bundled model; its library and state cache live in the benchmark's own data folder
    (bench/results/.home), so a rerun reads no segment again (``DOCFOCUS_BENCH_STATES=0`` turns the state cache
    off). Answers do not depend on it: the "model" format is exact."""
    home = Path(os.environ.setdefault("DOCFOCUS_HOME", str(Path(__file__).parent / "results" / ".home")))
    home.mkdir(parents=True, exist_ok=True)
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    device = os.environ.get("DOCFOCUS_BENCH_DEVICE", "cpu")
    keep = os.environ.get("DOCFOCUS_BENCH_STATES", "1") != "0"
    settings = EngineSettings(model=os.environ.get("DOCFOCUS_BENCH_MODEL") or None, device=device)
    engine = Engine(settings.changed(answer={"max_new_tokens": max_new_tokens},
                                     store={"use_cache": keep, "cache_format": "model", "cache_cap_bytes": 48 * 1024**3}),
                    library=Library(home / "library.sqlite"))
    engine.load()
    return engine


def haystack_pages(engine, tokens: int) -> list[list[str]]:
    return fill_pages(to_paragraphs(prose(engine, haystack_sentences(), tokens, START)))


def needle_pdf(path: Path, pages: list[list[str]], needle: str, depth: float) -> tuple[Path, int]:
    """The pages as a PDF with ``needle`` as a paragraph at ``depth`` (0-1); returns (path, 1-based page)."""
    pages = [list(page) for page in pages]
    spots = [(p, i) for p, page in enumerate(pages) for i in range(len(page) + 1)]
    page, index = spots[min(len(spots) - 1, round(depth * (len(spots) - 1)))]
    pages[page].insert(index, needle)
    return text_pdf(path, [" ".join(page) for page in pages], words_per_page=1), page + 1


def needle_documents(engine, set_name: str, length: int, count: int, folder: Path):
    """(document handle, [case], seconds to open it) for ``count`` needles in a ~``length``-token haystack."""
    folder.mkdir(parents=True, exist_ok=True)
    pages = haystack_pages(engine, length)
    for index in range(count):
        needle, question, answers = needle_case(index)
        depth = index / max(1, count - 1)
        path, page = needle_pdf(folder / f"{set_name}-{index}.pdf", pages, needle, depth)
        started = time.perf_counter()
        doc = engine.open_document(path)  # nothing is read: the question reads what it needs
        case = {"set": set_name, "id": f"{set_name}-{index}", "question": question, "answer_any": answers,
                "page": page, "needle": needle}
        yield doc, [case], round(time.perf_counter() - started, 1)
