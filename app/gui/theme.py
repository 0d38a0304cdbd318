"""Light and dark palettes: follow the system's scheme (and its changes), or a theme the user chose."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
DARK_COLORS = {
    "Window": "#2b2b2b", "WindowText": "#e6e6e6", "Base": "#1f1f1f", "AlternateBase": "#2b2b2b",
    "Text": "#e6e6e6", "Button": "#333333", "ButtonText": "#e6e6e6", "Highlight": "#3d7bd9",
    "HighlightedText": "#ffffff", "ToolTipBase": "#333333", "ToolTipText": "#e6e6e6", "Mid": "#555555",
    "Dark": "#191919", "PlaceholderText": "#8a8a8a", "Link": "#6ea8ff",
}
DARK_DISABLED = {"Text": "#7a7a7a", "WindowText": "#8a8a8a", "ButtonText": "#7a7a7a"}

_chosen = {"theme": "system", "connected": False}


def dark_palette() -> QPalette:
    palette = QPalette()
    for name, value in DARK_COLORS.items():
        palette.setColor(getattr(QPalette.ColorRole, name), QColor(value))
    for name, value in DARK_DISABLED.items():
        palette.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(value))
    return palette


def system_is_dark(app) -> bool:
    hints = app.styleHints()
    return hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app, theme: str = "system") -> None:
    """Fusion style with the light or dark palette: ``theme`` is "system" (follows the desktop, also when it
    changes while DocFocus runs), "light" or "dark"."""
    app.setStyle("Fusion")
    _chosen["theme"] = theme if theme in dict(THEMES) else "system"
    _update(app)
    hints = app.styleHints()
    if not _chosen["connected"] and hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: _update(app))
        _chosen["connected"] = True


def current_theme() -> str:
    return _chosen["theme"]


def _update(app) -> None:
    theme = _chosen["theme"]
    dark = system_is_dark(app) if theme == "system" else theme == "dark"
    app.setPalette(dark_palette() if dark else app.style().standardPalette())


def apply_palette(app, dark: bool | None = None) -> None:
    """``dark`` None follows the system; True or False forces one (screenshots, tests)."""
    apply_theme(app, "system" if dark is None else ("dark" if dark else "light"))
