"""Light and dark palettes: follow the system's scheme (and its changes), or a theme the user chose.

Every text colour of both palettes keeps a contrast ratio of at least 4.5:1 (WCAG AA) against the background it
is drawn on (tests/gui/test_themes.py measures it). A theme change reaches every widget at once, live: widgets
with a style sheet are polished again (Qt keeps the palette they had when their style sheet was set), and a
widget that picks its own colours has a ``follow_theme()`` method that is called after the change.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
DARK_COLORS = {
    "Window": "#2b2b2b", "WindowText": "#e6e6e6", "Base": "#1f1f1f", "AlternateBase": "#2b2b2b",
    "Text": "#e6e6e6", "Button": "#333333", "ButtonText": "#e6e6e6", "Highlight": "#2f6fcf",
    "HighlightedText": "#ffffff", "ToolTipBase": "#333333", "ToolTipText": "#e6e6e6", "Mid": "#555555",
    "Dark": "#191919", "PlaceholderText": "#9e9e9e", "Link": "#6ea8ff", "LinkVisited": "#b59cff",
    "BrightText": "#ffffff",
}
DARK_DISABLED = {"Text": "#7a7a7a", "WindowText": "#8a8a8a", "ButtonText": "#7a7a7a"}
# Fusion's light palette, but with a selection colour that white text can be read on, and secondary text (hints,
# an answer's time) dark enough to read: Fusion's defaults give 3.7:1 and 3.4:1.
LIGHT_COLORS = {"Highlight": "#2a6fb0", "HighlightedText": "#ffffff", "PlaceholderText": "#5f5f5f",
                "Link": "#0b57d0", "LinkVisited": "#6a1b9a"}

_chosen = {"theme": "system", "connected": False}


def _palette(base: QPalette, colors: dict[str, str], disabled: dict[str, str] | None = None) -> QPalette:
    palette = QPalette(base)
    for name, value in colors.items():
        role = getattr(QPalette.ColorRole, name)
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            palette.setColor(group, role, QColor(value))
        if name not in (disabled or {}) and name in ("Highlight", "Link", "PlaceholderText", "LinkVisited"):
            palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(value))
    for name, value in (disabled or {}).items():
        palette.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(value))
    return palette


def dark_palette() -> QPalette:
    return _palette(QPalette(), DARK_COLORS, DARK_DISABLED)


def light_palette(app=None) -> QPalette:
    app = app or QApplication.instance()
    return _palette(app.style().standardPalette(), LIGHT_COLORS)


def system_is_dark(app) -> bool:
    hints = app.styleHints()
    return hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether ``palette`` (default: the application's) is a dark one."""
    palette = palette if palette is not None else QApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def themed(light: str, dark: str) -> str:
    """The colour for the theme now shown (for colours a palette has no role for: banners, a failed state)."""
    return dark if is_dark() else light


def secondary_text(widget: QWidget) -> QWidget:
    """Greyed words that stay readable (hints, an answer's time): the palette's placeholder colour, which both
    themes keep at 4.5:1 or more, instead of disabling the widget (disabled text is dimmer, and drops tooltips)."""
    widget.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return widget


def apply_theme(app, theme: str = "system") -> None:
    """Fusion style with the light or dark palette: ``theme`` is "system" (follows the desktop, also when it
    changes while DocFocus runs), "light" or "dark"."""
    if app.style().name().lower() != "fusion":
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
    app.setPalette(dark_palette() if dark else light_palette(app))
    for widget in app.allWidgets():
        follow = getattr(widget, "follow_theme", None)
        if callable(follow):
            follow()  # sets its own style sheet (or colours) for the new theme
        elif widget.styleSheet():
            widget.setStyleSheet(widget.styleSheet())  # polished again: its palette and palette(...) colours


def apply_palette(app, dark: bool | None = None) -> None:
    """``dark`` None follows the system; True or False forces one (screenshots, tests)."""
    apply_theme(app, "system" if dark is None else ("dark" if dark else "light"))
