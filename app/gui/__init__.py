"""DocFocus's desktop app (PySide6). ``run_gui(pdf_path)`` opens the main window and runs Qt."""
from __future__ import annotations

import sys


def apply_palette(app, dark: bool | None = None) -> None:
    """Fusion style with a palette that follows the system's light or dark scheme (and its changes);
    ``dark`` forces one (screenshots, tests)."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    hints = app.styleHints()

    def update(*_) -> None:
        use_dark = dark if dark is not None else (
            hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark)
        if not use_dark:
            app.setPalette(app.style().standardPalette())
            return
        palette = QPalette()
        role = QPalette.ColorRole
        for key, value in [(role.Window, "#2b2b2b"), (role.WindowText, "#e6e6e6"), (role.Base, "#1f1f1f"),
                           (role.AlternateBase, "#2b2b2b"), (role.Text, "#e6e6e6"), (role.Button, "#333333"),
                           (role.ButtonText, "#e6e6e6"), (role.Highlight, "#3d7bd9"),
                           (role.HighlightedText, "#ffffff"), (role.ToolTipBase, "#333333"),
                           (role.ToolTipText, "#e6e6e6"), (role.Mid, "#555555"), (role.Dark, "#191919"),
                           (role.PlaceholderText, "#8a8a8a"), (role.Link, "#6ea8ff")]:
            palette.setColor(key, QColor(value))
        palette.setColor(QPalette.ColorGroup.Disabled, role.Text, QColor("#7a7a7a"))
        palette.setColor(QPalette.ColorGroup.Disabled, role.WindowText, QColor("#8a8a8a"))
        palette.setColor(QPalette.ColorGroup.Disabled, role.ButtonText, QColor("#7a7a7a"))
        app.setPalette(palette)

    update()
    if dark is None and hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(update)


def run_gui(pdf_path: str | None = None) -> int:
    """Open the DocFocus window (on ``pdf_path`` if given) and run until it closes; returns the exit code."""
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("DocFocus")
    app.setOrganizationName("DocFocus")
    apply_palette(app)
    window = MainWindow()
    window.show()
    if pdf_path:
        window.open_pdf(pdf_path)
    return app.exec()
