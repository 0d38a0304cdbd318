"""``docfocus --self-test``: check that an install (packaged or from source) works, headless.

In a temporary data folder it loads the bundled model, reads resources/sample.pdf, answers one
question (checking the answer, its support, citation, evidence and highlights), answers a question about a
longer generated document (about 2,000 tokens) with Dynamic Group Attention over the whole document and with
dense attention (DGA must compress, attending to under half of it, and begin its answer as dense does), checks that
the document
and its state were written to SQLite and are read back by a fresh engine, and opens and closes the
main window offscreen. It prints one summary line and exits 0, or prints the failing step and its
reason and exits 1. Nothing is downloaded and the user's own data folder is not touched.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

QUESTION = "How tall is the tower?"
EXPECTED = "38"  # resources/sample.pdf, page 2: "The tower is 38 meters tall ..."
EXPECTED_PAGE = 2
MAX_NEW_TOKENS = 24


class SelfTestFailure(Exception):
    """A check failed; the message says which and why."""


def resources_dir() -> Path:
    """resources/ of a frozen bundle or of the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def process_age() -> float | None:
    """Seconds since this process started (Linux), so frozen start-up time is counted too."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class _Steps:
    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.current = "start"
        self.started = time.perf_counter()

    def __call__(self, name: str) -> None:
        self.current = name
        if self.verbose:
            print(f"self-test: [{time.perf_counter() - self.started:5.1f} s] {name} ...", file=sys.stderr,
                  flush=True)


def run(device: str = "auto", verbose: bool = False, keep_home: bool = False) -> int:
    """Run every check; print one line; return the exit status."""
    started = time.perf_counter()
    age0 = process_age()
    home = Path(tempfile.mkdtemp(prefix="docfocus-selftest-"))
    saved = {key: os.environ.get(key) for key in ("DOCFOCUS_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                                  "QT_QPA_PLATFORM")}
    os.environ.update(DOCFOCUS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      QT_QPA_PLATFORM="offscreen")
    step = _Steps(verbose)
    try:
        facts = _checks(step, device, started, age0)
    except SelfTestFailure as failure:
        print(f"DocFocus self-test FAILED at {step.current}: {failure}", flush=True)
        return 1
    except Exception as error:  # anything unexpected is a failure with its reason, not a traceback dump
        if verbose:
            traceback.print_exc()
        print(f"DocFocus self-test FAILED at {step.current}: {type(error).__name__}: {error}", flush=True)
        return 1
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if keep_home:
            print(f"self-test data kept in {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    total = time.perf_counter() - started
    print("DocFocus self-test OK: " + "; ".join(facts) + f"; total {total:.1f} s", flush=True)
    return 0


def _checks(step: _Steps, device: str, started: float, age0: float | None) -> list[str]:
    step("importing the engine")
    from engine import __version__
    from engine.api import Engine, EngineSettings
    from engine.settings import AnswerSettings

    facts = [f"DocFocus {__version__}", "frozen" if getattr(sys, "frozen", False) else "source"]
    sample = resources_dir() / "sample.pdf"
    if not sample.is_file():
        raise SelfTestFailure(f"the sample PDF is missing: {sample}")

    step("loading the bundled model")
    settings = EngineSettings(model="bundled", device=device, answer=AnswerSettings(max_new_tokens=MAX_NEW_TOKENS))
    engine = Engine(settings)
    loaded = engine.load()
    facts.append(f"{loaded.device_name} {str(loaded.dtype).replace('torch.', '')}")
    converted = list((Path(os.environ["DOCFOCUS_HOME"]) / "models").glob("*"))
    if getattr(sys, "frozen", False) and converted:
        raise SelfTestFailure("the packaged app converted the model again instead of using the shipped one")

    step("answering")
    doc = engine.open_document(sample)
    answer = engine.ask(doc, QUESTION)
    first_answer_s = time.perf_counter() - started
    if EXPECTED not in answer.answer or not answer.supported:
        raise SelfTestFailure(f"{QUESTION!r} was answered {answer.answer!r} (supported: {answer.supported}); "
                              f"expected {EXPECTED} meters")
    age = f", {age0 + first_answer_s:.1f} s after process start" if age0 is not None else ""
    facts.append(f"answer {answer.answer!r} in {first_answer_s:.1f} s{age}")

    step("checking the citation, evidence and highlights")
    _check_story(answer)
    from engine.retrieval.meaning import model_folder

    if (getattr(sys, "frozen", False) or model_folder() is not None) and "meaning" not in answer.attention["ranking"]:
        raise SelfTestFailure(f"the passages were ranked by {answer.attention['ranking']}, not by meaning too "
                              "(the passage embedder is missing)")
    facts.append("ranked by " + " and ".join(answer.attention["ranking"]))
    facts.append(f"cited p. {answer.citations[0].page}, {len(answer.highlights)} words highlighted there")

    step("answering with DGA over a longer document, against dense attention")
    facts.append(_check_dga(engine, settings, home=Path(os.environ["DOCFOCUS_HOME"])))

    step("re-reading the SQLite cache")
    facts.append(_check_cache(engine, answer, sample))
    del engine, loaded, doc

    step("opening the main window")
    facts.append(_check_window())
    return facts


DGA_QUESTION = "Who is Pepper?"
AGREEMENT_WORDS = 5  # DGA's answer must begin with the same words as dense attention's


def _long_document(folder: Path) -> Path:
    """A PDF of about 2,000 tokens of ledger lines with one fact in the middle: long enough for DGA to compress
    (gamma 0.1 keeps 256 of about 2,000 tokens exactly)."""
    import pymupdf

    lines = [f"Shelf {i} of the archive holds {3 + i % 7} boxes of letters written in {1801 + i}." for i in range(90)]
    lines.insert(45, "The lighthouse keeper's cat is named Pepper.")
    path = folder / "selftest-long.pdf"
    with pymupdf.open() as pdf:
        for start in range(0, len(lines), 45):
            page = pdf.new_page()
            page.insert_textbox(pymupdf.Rect(50, 50, 560, 800), " ".join(lines[start:start + 45]), fontsize=9)
        pdf.save(path)
    return path


def _check_dga(engine, settings, home: Path) -> str:
    """Whole-document answers with DGA and with dense attention: DGA must compress, and its answer must begin as
    dense attention's does (a broken group or bias changes the very first tokens)."""
    doc = engine.open_document(_long_document(home))
    answers = {}
    for mode in ("dense", "dga"):
        engine.settings = settings.changed(answer={"context": "document"}, attention={"mode": mode})
        answers[mode] = engine.ask(doc, DGA_QUESTION)
    engine.settings = settings
    dga, dense = answers["dga"], answers["dense"]
    fraction = dga.attention.get("attended_fraction", 1.0)
    if dga.attention.get("mode") != "dga" or fraction >= 0.5:
        raise SelfTestFailure(f"DGA did not compress: it attended to {fraction:.0%} of a "
                              f"{doc.total_tokens}-token document")
    same = dga.generated.split()[:AGREEMENT_WORDS] == dense.generated.split()[:AGREEMENT_WORDS]
    if not same:
        raise SelfTestFailure(f"DGA answered {dga.generated!r} where dense attention answered {dense.generated!r}")
    return (f"DGA answered as dense attention did ({' '.join(dga.generated.split()[:AGREEMENT_WORDS])}...), "
            f"attending to {fraction:.0%} of {doc.total_tokens} tokens")


def _check_story(answer) -> None:
    """The citation, the top evidence and the highlights all point at the page that holds the answer."""
    if not answer.citations or answer.citations[0].page != EXPECTED_PAGE:
        raise SelfTestFailure(f"the answer cites pages {[c.page for c in answer.citations]}, not {EXPECTED_PAGE}")
    if not answer.evidence or answer.evidence[0].page != EXPECTED_PAGE:
        raise SelfTestFailure(f"the top evidence is on pages {[e.page for e in answer.evidence[:3]]}, "
                              f"not page {EXPECTED_PAGE}")
    if not answer.evidence[0].boxes or not all(len(box) == 4 for box in answer.evidence[0].boxes):
        raise SelfTestFailure("the evidence on page 2 has no word boxes to highlight")
    if not answer.highlights or {h.page for h in answer.highlights} != {EXPECTED_PAGE}:
        raise SelfTestFailure(f"the highlights are on pages {sorted({h.page for h in answer.highlights})}")


def _check_cache(first_engine, first_answer, sample: Path) -> str:
    """A fresh engine on the same data folder must find the document (and its state, if cached)."""
    from engine.api import Engine
    from engine.library.documents import Library
    from engine.paths import data_dir

    databases = sorted(p.name for p in data_dir().glob("*.sqlite*"))
    if not databases:
        raise SelfTestFailure(f"nothing was written to SQLite in {data_dir()}")
    library = Library()
    if library.load(first_answer.document["sha256"]) is None:
        raise SelfTestFailure("the document is not in the library database after reading it")
    has_state_cache = importlib.util.find_spec("engine.store.state_cache") is not None
    if not has_state_cache:
        return f"library re-read ({', '.join(databases)}); no state cache in this build"
    second = Engine(first_engine.settings)
    second.load()
    doc = second.open_document(sample)
    again = second.ask(doc, QUESTION)
    if not again.cache_hit:
        raise SelfTestFailure("a fresh engine read the document again instead of restoring its cached state")
    if again.answer != first_answer.answer:
        raise SelfTestFailure(f"the answer from the cached state differs: {again.answer!r} "
                              f"vs {first_answer.answer!r}")
    return f"state cache hit in a fresh engine ({', '.join(databases)})"


def _check_window() -> str:
    if importlib.util.find_spec("app.gui") is None:
        raise SelfTestFailure("the desktop app (app.gui) is not part of this install")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["docfocus", "-platform", "offscreen"])
    # Settings in the temporary data folder: the user's own window and engine settings stay untouched.
    from engine.paths import data_dir

    store = QSettings(str(data_dir() / "selftest-settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=store)
    window.show()
    for _ in range(5):
        app.processEvents()
    title = window.windowTitle()
    if not window.isVisible():
        raise SelfTestFailure("the main window did not show")
    window.close()
    app.processEvents()
    window.deleteLater()
    app.processEvents()
    return f"window {title!r} opened and closed ({app.platformName()})"
