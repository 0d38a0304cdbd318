"""DocFocus's desktop app (PySide6). ``run_gui(pdf_path)`` opens the main window and runs Qt."""
from __future__ import annotations

import sys

from .theme import apply_palette, apply_theme  # noqa: F401 - the public API


def run_gui(pdf_path: str | None = None) -> int:
    """Open the DocFocus window (on ``pdf_path`` if given) and run until it closes; returns the exit code."""
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DocFocus")
    app.setOrganizationName("DocFocus")
    window = MainWindow()  # applies the theme saved in its settings
    window.show()
    if pdf_path:
        window.open_pdf(pdf_path)
    return app.exec()
