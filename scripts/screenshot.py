"""Start the real DocFocus window on a PDF, ask a question with the bundled model, save a screenshot.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/screenshot.py resources/sample.pdf \
        "Who was the first lighthouse keeper?" docs/screenshot.png

    python scripts/screenshot.py --empty - - docs/start.png     # the start screen (no document)

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/screenshot.py --theme dark --pages \
        /usr/share/R/doc/manual/R-data.pdf \
        "Which function reads fixed-width-format files given a vector of field widths?" docs/looked-dark.png
                                                                # where the model looked: the strip, the thumbnails

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/screenshot.py --scan 200 resources/sample.pdf \
        "How tall is the tower?" docs/scanned.png               # the same PDF as a scan: read with OCR

Uses a throw-away QSettings file, so the user's settings are neither read nor changed.
Exits non-zero if no answer arrives within --timeout seconds.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf")
    parser.add_argument("question")
    parser.add_argument("out", nargs="?", default="docs/screenshot.png")
    parser.add_argument("--attention", choices=["dga", "dense"], default="dga")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="1440x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--theme", choices=["system", "light", "dark"], default="system",
                        help="View > Theme: the window's theme whatever the system says")
    parser.add_argument("--dark", action="store_true", help="the same as --theme dark")
    parser.add_argument("--pages", action="store_true", help="show the page thumbnails in the side panel")
    parser.add_argument("--empty", action="store_true", help="no question: the window as it opens, no document")
    parser.add_argument("--scan", type=int, metavar="DPI",
                        help="open a scan of the PDF instead: every page an image at DPI, slightly turned, no text")
    args = parser.parse_args()
    if args.scan:
        args.pdf = str(scanned_copy(Path(args.pdf), args.scan, Path(tempfile.mkdtemp()) / Path(args.pdf).name))

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow
    from app.gui.settings import save_engine_settings
    from engine.api import EngineSettings

    app = QApplication(sys.argv[:1])
    app.setApplicationName("DocFocus")
    store = QSettings(str(Path(tempfile.mkdtemp()) / "docfocus.ini"), QSettings.Format.IniFormat)
    store.setValue("view/theme", "dark" if args.dark else args.theme)  # the window applies it (View > Theme)
    save_engine_settings(store, EngineSettings(model=None, device=args.device).changed(attention={"mode": args.attention}, answer={"max_new_tokens": 60}))
    window = MainWindow(settings=store)
    width, height = (int(v) for v in args.size.split("x"))
    window.resize(width, height)
    window.show()
    result = {"code": 1}

    def ask(_handle) -> None:
        window.chat.question.setPlainText(args.question)
        window.chat.submit()

    def save() -> None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(args.out):
            print(f"could not write {args.out}", file=sys.stderr)
        else:
            print(f"saved {args.out}")
            result["code"] = 0
        window.close()
        app.quit()

    def answered(entry) -> None:
        if args.pages:
            window.side.setCurrentWidget(window.side.thumbnails)
            window.side.follow_page(window.view.current_page())
        print("answer:", entry.get("answer"))
        print("citations:", [c["page"] for c in entry.get("citations") or []],
              "highlights on pages:", sorted({h["page"] for h in entry.get("highlights") or []}))
        print("where the model looked:", {page + 1: f"{share:.0%}" for page, share in window.looked.shares.items()})
        QTimer.singleShot(2500, save)  # the view went to the first citation; after its flash the highlights show

    def failed(job: str, message: str) -> None:
        print(f"error ({job}): {message}", file=sys.stderr)

    window.sig_document_ready.connect(ask)
    window.sig_answer_shown.connect(answered)
    window.sig_error_shown.connect(failed)
    QTimer.singleShot(int(args.timeout * 1000), lambda: (print("timed out", file=sys.stderr), app.quit()))
    if args.empty:  # the start screen, with the recent documents of this data folder
        QTimer.singleShot(1500, save)
    else:
        window.open_pdf(args.pdf)
    app.exec()
    return result["code"]


def scanned_copy(source: Path, dpi: int, out: Path) -> Path:
    """``source`` as a flatbed scan would give it: each page a gray image at ``dpi``, turned by half a degree."""
    import pymupdf

    with pymupdf.open(source) as document:
        scan = pymupdf.open()
        for page in document:
            pixmap = page.get_pixmap(matrix=pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(0.5),
                                     colorspace=pymupdf.csGRAY, alpha=False)
            scan.new_page(width=page.rect.width, height=page.rect.height).insert_image(page.rect, pixmap=pixmap)
        scan.save(out, deflate=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
