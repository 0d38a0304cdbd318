"""GUI test support: isolated QSettings, generated multi-page PDFs, windows on the tiny model.

A plain module imported by the GUI tests, not a conftest.py: tests/conftest.py owns that module name
(tests import from it), and a second conftest would shadow it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pymupdf
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

NEEDLE = "zeppelin"
NEEDLE_PAGES = (3, 17, 17, 25)  # 0-based pages that hold the needle word (twice on page 17)


def book_pdf(path: Path, pages: int = 30) -> Path:
    """A book: numbered pages of text, a two-level outline, the needle word on ``NEEDLE_PAGES``."""
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page(width=595, height=842)
        page.insert_text((72, 72), f"Chapter {number // 5 + 1} page {number + 1}", fontsize=16)
        text = f"Alpha beta gamma delta on page {number + 1}. "
        needles = NEEDLE_PAGES.count(number)
        for line in range(12):
            extra = f" The {NEEDLE} flew over." if line < needles else ""
            page.insert_text((72, 120 + 24 * line), text + extra, fontsize=11)
    toc = []
    for chapter in range(pages // 5):
        toc.append([1, f"Chapter {chapter + 1}", chapter * 5 + 1])
        toc.append([2, f"Section {chapter + 1}.1", chapter * 5 + 3])
    document.set_toc(toc)
    document.set_metadata({"title": "The Test Book"})
    document.save(path)
    return path


@pytest.fixture()
def book(tmp_path) -> Path:
    return book_pdf(tmp_path / "book.pdf")


@pytest.fixture()
def qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "docfocus.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="session")
def gui_engine(tiny_model_dir, tmp_path_factory):
    """The tiny random model with room for long (gibberish) answers, so Stop has something to stop."""
    from engine.api import Engine, EngineSettings
    from engine.library import Library

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu", max_new_tokens=300),
                    library=Library(tmp_path_factory.mktemp("gui-lib") / "library.sqlite"))
    engine.load()
    return engine


def wait_open(qtbot, window, pages: int | None = None, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: window.view.page_count() > 0 and (pages is None or window.view.page_count() == pages),
                    timeout=timeout)


def close_window(window) -> None:
    window.close()


@pytest.fixture()
def make_window(qtbot, qsettings):
    """Build MainWindows that are closed (threads joined) after the test."""
    from app.gui.main_window import MainWindow

    windows = []

    def make(engine=None, auto_prepare: bool = False, settings=None):
        window = MainWindow(settings=settings if settings is not None else qsettings, engine=engine,
                            auto_prepare=auto_prepare)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
