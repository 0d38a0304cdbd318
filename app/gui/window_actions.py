"""The main window's actions, toolbar and menus (shortcuts are named in the tooltips)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QSizePolicy, QSpinBox, QToolBar, QWidget

from .theme import THEMES
from .widgets import RelevanceLegend


def make_action(window, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    """An action with its shortcut(s); the tooltip ends with the first shortcut, as a user types it."""
    action = QAction(text, window)
    if shortcut is not None:
        keys = shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)]
        action.setShortcuts(keys)
        tip = f"{tip or text} ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(tip or text)
    action.triggered.connect(slot)
    window.addAction(action)
    return action


def build_actions(window) -> None:
    """Create the window's actions, page box, toolbar and menus as attributes of ``window``."""
    keys, view = QKeySequence.StandardKey, window.view
    act = lambda *args, **kwargs: make_action(window, *args, **kwargs)  # noqa: E731
    window.open_action = act("Open…", window.choose_file, keys.Open,
                             "Open a document (PDF, EPUB, XPS, FB2, MOBI, CBZ, text or a scanned image)")
    window.zoom_in_action = act("Zoom in", view.zoom_in, [QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
    window.zoom_out_action = act("Zoom out", view.zoom_out, QKeySequence("Ctrl+-"))
    window.fit_width_action = act("Fit width", view.fit_width, QKeySequence("Ctrl+2"))
    window.fit_page_action = act("Fit page", view.fit_page, QKeySequence("Ctrl+1"))
    window.find_action = act("Find…", window.show_find, keys.Find, "Find in the document")
    window.find_next_action = act("Find next", lambda: window.find_next(1), QKeySequence("F3"))
    window.find_prev_action = act("Find previous", lambda: window.find_next(-1), QKeySequence("Shift+F3"))
    window.goto_action = act("Go to page…", window.focus_page_box, QKeySequence("Ctrl+G"))
    window.highlight_action = act("Highlights", view.set_highlights_visible, QKeySequence("Ctrl+H"),
                                  "Show or hide the words the answer rests on")
    window.highlight_action.setCheckable(True)
    window.highlight_action.setChecked(True)
    window.settings_action = act("Settings…", window.show_settings, keys.Preferences)
    window.quit_action = act("Quit", window.close, keys.Quit)
    window.side_action = act("Side panel", lambda on: window.side.setVisible(on), QKeySequence("F9"))
    window.side_action.setCheckable(True)
    window.side_action.setChecked(True)
    window.document_actions = [window.zoom_in_action, window.zoom_out_action, window.fit_width_action,
                               window.fit_page_action, window.find_action, window.find_next_action,
                               window.find_prev_action, window.goto_action]

    window.page_box = QSpinBox()
    window.page_box.setRange(1, 1)
    window.page_box.setKeyboardTracking(False)
    window.page_box.setToolTip("Go to page (Ctrl+G)")
    window.page_box.valueChanged.connect(lambda value: view.go_to_page(value - 1))
    window.page_total = QLabel("")
    window.zoom_label = QLabel("")
    window.legend = RelevanceLegend()
    _build_toolbar(window)
    _build_menus(window)


def _build_toolbar(window) -> None:
    tools = QToolBar("Main")
    tools.setObjectName("mainToolbar")
    tools.setMovable(False)
    window.addToolBar(tools)
    tools.addAction(window.open_action)
    tools.addSeparator()
    for item in (window.zoom_out_action, window.zoom_label, window.zoom_in_action, window.fit_width_action,
                 window.fit_page_action, None, QLabel(" Page "), window.page_box, window.page_total, None,
                 window.find_action, window.highlight_action, window.legend):
        if item is None:
            tools.addSeparator()
        elif isinstance(item, QWidget):
            tools.addWidget(item)
        else:
            tools.addAction(item)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    tools.addWidget(spacer)
    tools.addAction(window.settings_action)


def _build_menus(window) -> None:
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addAction(window.open_action)
    window.recent_menu = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    file_menu.addAction(window.settings_action)
    file_menu.addAction(window.quit_action)
    view_menu = menu.addMenu("&View")
    for action in (window.zoom_in_action, window.zoom_out_action, window.fit_width_action, window.fit_page_action,
                   window.goto_action, window.find_action, window.find_next_action, window.find_prev_action,
                   window.highlight_action, window.side_action):
        view_menu.addAction(action)
    theme_menu = view_menu.addMenu("&Theme")
    group = QActionGroup(window)
    window.theme_actions = {}
    for key, label in THEMES:
        action = theme_menu.addAction(label)
        action.setCheckable(True)
        action.triggered.connect(lambda _=False, key=key: window.set_theme(key))
        group.addAction(action)
        window.theme_actions[key] = action


def show_document_controls(window, shown: bool, pages: int = 0) -> None:
    """No document: no page numbers, no zoom; the start screen instead of pages."""
    window.page_box.blockSignals(True)
    window.page_box.setMaximum(max(1, pages))
    window.page_box.setValue(window.view.current_page() + 1)  # the view may have moved before the maximum was set
    window.page_box.blockSignals(False)
    window.page_box.setEnabled(shown)
    window.page_box.setSpecialValueText("" if shown else " ")  # no page number without a document
    window.page_total.setText(f" / {pages} " if shown else " – ")
    for action in window.document_actions:
        action.setEnabled(shown)
    if not shown:
        window.zoom_label.setText("")
        window.reader.setCurrentWidget(window.start_screen)


def fill_recent(window, rows: list) -> None:
    """File > Open recent and the start screen's list, from the library's recent rows (newest first)."""
    window.recent_menu.clear()
    for row in rows:
        action = window.recent_menu.addAction(f"{row.get('title') or Path(row['path']).stem}")
        action.setToolTip(row["path"])
        action.setEnabled(Path(row["path"]).is_file())
        action.triggered.connect(lambda _=False, path=row["path"]: window.open_pdf(path))
    window.recent_menu.setEnabled(bool(rows))
    window.start_screen.set_recent(rows)
