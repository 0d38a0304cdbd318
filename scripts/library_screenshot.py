"""Screenshot of the library in the real window: a small library read with the bundled model, one question to
the whole library and its answer, whose source (another document) is open in the reader.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/library_screenshot.py docs/library.png

The library is resources/sample.pdf, two documents written here (a ferry timetable, an island almanac), a
file that is not a PDF (to show a document that could not be read) and, with --long (default: R's "An
Introduction to R" where r-doc-pdf is installed), a long manual that is still being read when the question is
asked: the question goes first and the reading goes on after it. A throw-away data folder; the user's settings
and library are neither read nor changed. Exits non-zero if no answer arrives within --timeout s.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TIMETABLE = [
    ("Gull Island ferry timetable", "The ferry Saltmarsh sails from the harbor pier to Gull Island every day from "
     "April to October. The crossing takes forty minutes in calm weather."),
    ("Departures", "The first ferry leaves the harbor at nine o'clock in the morning. The last ferry back leaves "
     "Gull Island at half past five. On Sundays there is an extra crossing at noon."),
    ("Fares", "A return ticket costs 12 euros for adults and 6 euros for children. Bicycles travel free; dogs "
     "must stay on a lead on the deck."),
]
ALMANAC = [
    ("Island almanac", "Gull Island lies four kilometers off the coast. About sixty people live there all year; "
     "in summer the population grows to several hundred."),
    ("Birds", "Puffins nest on the northern cliffs from May to July. The island's bird count in 2019 recorded "
     "1,240 breeding pairs of kittiwakes."),
    ("Weather", "Storms are most frequent in November. The lighthouse logbooks record the great storm of 1953, "
     "when the ferry did not sail for eleven days."),
]


def write_pdf(path: Path, pages: list[tuple[str, str]], title: str) -> Path:
    import pymupdf

    document = pymupdf.open()
    for heading, text in pages:
        page = document.new_page(width=595, height=842)
        page.insert_text((60, 80), heading, fontsize=18)
        page.insert_textbox(pymupdf.Rect(60, 100, 535, 800), text, fontsize=12)
    document.set_metadata({"title": title})
    document.save(path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/library.png")
    parser.add_argument("--question", default="Who kept the light burning for 31 years?")
    parser.add_argument("--size", default="1500x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--long", default="/usr/share/R/doc/manual/R-intro.pdf",
                        help="a long PDF added last, still being read at the question ('' for none)")
    args = parser.parse_args()

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow
    from app.gui.settings import save_engine_settings
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    app = QApplication(sys.argv[:1])
    app.setApplicationName("DocFocus")
    work = Path(tempfile.mkdtemp(prefix="docfocus-library-"))
    shelf = work / "Island documents"
    shelf.mkdir()
    timetable = write_pdf(shelf / "ferry-timetable.pdf", TIMETABLE, "Gull Island ferry timetable")
    write_pdf(shelf / "almanac.pdf", ALMANAC, "Island almanac")
    (shelf / "minutes-1998.pdf").write_bytes(b"%PDF-1.4 a damaged download")
    store = QSettings(str(work / "docfocus.ini"), QSettings.Format.IniFormat)
    store.setValue("view/theme", "light")
    settings = EngineSettings(model=None, device="cpu").changed(answer={"max_new_tokens": 40})
    save_engine_settings(store, settings)
    (work / "data").mkdir()
    engine = Engine(settings, library=Library(work / "data" / "library.sqlite"))
    window = MainWindow(settings=store, engine=engine, auto_prepare=False)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    window.side.setCurrentWidget(window.library.panel)
    result = {"code": 1, "asked": False}

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if window.grab().save(args.out):
            print(f"saved {args.out}")
            result["code"] = 0
        else:
            print(f"could not write {args.out}", file=sys.stderr)
        window.close()
        app.quit()

    def answered(entry) -> None:
        print("answer:", entry.get("answer"))
        print("citations:", [(c["document"]["title"], c["page"]) for c in entry.get("citations") or []])
        panel = window.library.panel
        rows = [panel.items[i] for i in panel.items]
        panel.tree.setCurrentItem(next((r for r in rows if r.text(3) == "Couldn't read"), rows[0]))
        QTimer.singleShot(4000, save)  # after the citation's flash the highlights show; the reading goes on

    def ask_when_read() -> None:
        documents = window.library.documents
        if result["asked"]:
            return
        short = [d for d in documents if d["path"] != long_path]
        if (len(short) == 4 and all(d["state"] in ("ready", "failed") for d in short)
                and (not long_path or window.library.panel.show_reading_seen)):
            result["asked"] = True
            window.chat.set_scope("library")
            window.chat.question.setPlainText(args.question)
            window.chat.submit()
        else:
            QTimer.singleShot(500, ask_when_read)

    window.sig_answer_shown.connect(answered)
    window.sig_error_shown.connect(lambda kind, message: print(f"error ({kind}): {message}", file=sys.stderr))
    QTimer.singleShot(int(args.timeout * 1000), lambda: (print("timed out", file=sys.stderr), app.quit()))
    long_path = str(Path(args.long).resolve()) if args.long and Path(args.long).is_file() else ""
    window.library.panel.show_reading_seen = False
    window.library.worker.sig_reading.connect(  # ask once a few percent of the long one are read
        lambda _id, done, total: total > 5000 and done >= 0.04 * total and setattr(window.library.panel, "show_reading_seen", True))
    window.library.add([ROOT / "resources" / "sample.pdf", shelf] + ([long_path] if long_path else []))
    window.open_pdf(timetable)
    QTimer.singleShot(500, ask_when_read)
    app.exec()
    return result["code"]


if __name__ == "__main__":
    sys.exit(main())
