"""Issue 24, themes: every part of a chat card and of the window's chrome keeps text and links at 4.5:1 or more
against what is drawn behind them, in the light and the dark theme and after switching live either way (cards
made before the switch included); "Follow the system" stays available.

Each part is checked on the window as rendered (``QWidget.grab``): its background is the most common colour of
the part's pixels, its text colour is the one its palette gives it (the role it draws with: ``Link`` for links),
and that colour must be drawn there (a frozen palette would draw another one)."""
from __future__ import annotations

from collections import Counter

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QToolBar, QToolButton

from app.gui.engine_worker import Job
from engine.answer.result import Answer, Citation, Evidence, Highlight

from gui_support import book, make_window, qsettings, wait_open  # noqa: F401 (fixtures)

WCAG_AA = 4.5
PASSAGE = "Alpha beta gamma delta on page 18. The zeppelin flew over."
BOXES = [[72.0, 372.0, 180.0, 384.0]]


def luminance(color: QColor) -> float:
    def linear(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(color.redF()) + 0.7152 * linear(color.greenF()) + 0.0722 * linear(color.blueF())


def contrast(a: QColor, b: QColor) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_ratio_is_the_wcag_one():
    assert contrast(QColor("#000000"), QColor("#ffffff")) == pytest.approx(21.0)
    assert contrast(QColor("#777777"), QColor("#ffffff")) == pytest.approx(4.48, abs=0.01)


def answer(question: str, supported: bool = True) -> Answer:
    return Answer(question=question, answer="Over page 18.", document={"sha256": "x"}, model={},
                  attention={"mode": "dga"}, timings={"total_s": 2.5}, cache_hit=False, supported=supported,
                  evidence=[Evidence(18, PASSAGE, 1.0, BOXES, [10, 20])], citations=[Citation(18, PASSAGE, 0, BOXES)],
                  highlights=[Highlight(18, BOXES[0], 1.0)])


def add_card(qtbot, window, question: str, supported: bool = True):
    job = Job("ask")
    window.chat.start_answer(question, job.id)
    with qtbot.waitSignal(window.sig_answer_shown, timeout=5_000):
        window.worker.sig_answer.emit(job.id, answer(question, supported))
    card = window.chat.cards[-1]
    card.evidence_toggle.setChecked(True)  # the evidence list is shown too
    return card


def card_parts(card) -> list[tuple[str, object, QPalette.ColorRole]]:
    parts = [("question", card.question_label, None), ("answer", card.answer_label, None),
             ("source", card.citations_label, None), ("source link", card.citations_label, QPalette.ColorRole.Link),
             ("evidence toggle", card.evidence_toggle, None), ("evidence", card.evidence_box.itemAt(0).widget(), None),
             ("time", card.meta_label, None), ("copy", card.copy_button, None)]
    if card.support_label.isVisible():
        parts.append(("not found", card.support_label, None))
    return parts


def chrome_parts(window) -> list[tuple[str, object, QPalette.ColorRole]]:
    tools = window.findChild(QToolBar, "mainToolbar")
    parts = [(f"toolbar {action.text()}", tools.widgetForAction(action), None)
             for action in (window.open_action, window.fit_width_action, window.find_action,
                            window.highlight_action, window.settings_action)]
    parts += [("zoom", window.zoom_label, None), ("page total", window.page_total, None),
              ("menu bar", window.menuBar(), None), ("status", window.activity, None),
              ("model", window.model_label, None), ("attention", window.attention_label, None),
              ("chat title", next(w for w in window.chat.findChildren(QLabel) if w.text() == "Chat"), None),
              ("scope", window.chat.scope_buttons["library"], None), ("clear chat", window.chat.clear_button, None),
              ("question box", window.chat.question.viewport(), QPalette.ColorRole.PlaceholderText),
              ("ask", window.chat.send_button, None), ("side tabs", window.side.tabBar(), None),
              ("find label", next(w for w in window.find_bar.findChildren(QLabel) if w.text() == "Find:"), None),
              ("find count", window.find_bar.count, None)]
    parts += [(f"legend {w.text()}", w, None) for w in window.legend.findChildren(QLabel) if w.text()]
    for key in ("info", "warning", "error"):
        banner = window.banners._banners[key]
        parts += [(f"{key} banner", banner.label, None),
                  (f"{key} banner close", banner.findChild(QToolButton), None)]
    return parts


def foreground(widget, role) -> QColor:
    palette = widget.palette()
    group = QPalette.ColorGroup.Active if widget.isEnabled() else QPalette.ColorGroup.Disabled
    return palette.color(group, role if role is not None else widget.foregroundRole())


def most_common_shade(pixels: Counter) -> QColor:
    """The background: the most common shade (colours within 16 levels per channel count as one, so a button's
    gradient is one shade), as the mean of its pixels."""
    shades: dict[tuple, list] = {}
    for rgb, count in pixels.items():
        color = QColor.fromRgb(rgb)
        shade = shades.setdefault((color.red() // 16, color.green() // 16, color.blue() // 16), [0, 0, 0, 0])
        for index, value in enumerate((color.red(), color.green(), color.blue(), 1)):
            shade[index] += value * count
    red, green, blue, count = max(shades.values(), key=lambda shade: shade[3])
    return QColor(round(red / count), round(green / count), round(blue / count))


def check_parts(window, parts, theme: str) -> dict[str, float]:
    """The contrast of each part as rendered; fails with every part under 4.5:1 named."""
    QApplication.processEvents()
    image = window.grab().toImage()
    ratios, failures = {}, []
    for name, widget, role in parts:
        assert widget.isVisible(), f"{name} is not shown"
        corner = widget.mapTo(window, QPoint(0, 0))
        box = QRect(corner, widget.size()).intersected(image.rect())
        if box.width() > 12 and box.height() > 12:
            box = box.adjusted(3, 3, -3, -3)  # inside a button's frame
        pixels = Counter(image.pixel(x, y) for x in range(box.left(), box.right() + 1)
                         for y in range(box.top(), box.bottom() + 1))
        background = most_common_shade(pixels)
        color = foreground(widget, role)
        drawn = any(max(abs(c.red() - color.red()), abs(c.green() - color.green()), abs(c.blue() - color.blue())) <= 8
                    for c in map(QColor.fromRgb, pixels))
        ratio = ratios[name] = round(contrast(color, background), 2)
        if ratio < WCAG_AA or not drawn:
            failures.append(f"{name}: {color.name()} on {background.name()} = {ratio}"
                            + ("" if drawn else " (that colour is not drawn there)"))
    assert not failures, f"{theme}: " + "; ".join(failures)
    return ratios


def test_every_card_part_and_the_chrome_keep_4_5_to_1_in_both_themes_and_after_live_switches(
        qtbot, make_window, book):
    window = make_window()
    window.set_theme("light")
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    for kind in ("info", "warning", "error"):
        window.banners.show_banner(kind, kind, f"A {kind} banner with a few words")
    window.show_find()
    window.find_bar.count.setText("2 of 4")
    made_light = add_card(qtbot, window, "Where did the zeppelin fly?")
    unsupported = add_card(qtbot, window, "What is the moon made of?", supported=False)
    window.chat.scroll.ensureWidgetVisible(made_light)
    window.chat.question.clear()
    qtbot.waitUntil(lambda: unsupported.support_label.isVisible())

    def parts():
        cards = [card for card in window.chat.cards if card.isVisible()]
        window.chat.scroll.verticalScrollBar().setValue(0)
        return chrome_parts(window) + [(f"{i} {name}", w, role) for i, card in enumerate(cards)
                                       for name, w, role in card_parts(card)]

    check_parts(window, parts(), "light")
    window.theme_actions["dark"].trigger()  # View > Theme > Dark, live
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 80
    made_dark = add_card(qtbot, window, "Which page has the zeppelin?")
    check_parts(window, parts(), "dark")
    window.theme_actions["light"].trigger()  # and back: the cards made in the dark theme too
    assert made_dark.isVisible()
    light = check_parts(window, parts(), "light again")
    window.theme_actions["dark"].trigger()
    dark = check_parts(window, parts(), "dark again")
    assert len(light) == len(dark) >= 45
    for theme, ratios in (("light", light), ("dark", dark)):  # for the record (pytest -s)
        print(theme, sorted(ratios.items(), key=lambda item: item[1])[:6])


def test_the_library_and_start_screen_follow_the_theme(qtbot, make_window):
    from app.gui.library_panel import STATE

    window = make_window()
    panel = window.library.panel
    window.side.setCurrentWidget(panel)
    for theme in ("dark", "light", "dark"):
        window.set_theme(theme)
        QApplication.processEvents()
        panel.show_documents([{"id": 1, "path": "/gone/broken.pdf", "title": "broken", "state": "failed",
                               "reason": "It is not a PDF"}])  # (again: the library's own list may have come)
        base = panel.tree.palette().color(QPalette.ColorRole.Base)
        red = panel.items[1].foreground(STATE).color()
        assert contrast(red, base) >= WCAG_AA, (theme, red.name(), base.name())
        hint = next(w for w in window.start_screen.findChildren(QLabel) if w.text().startswith("or drop a file"))
        check_parts(window, [("start screen hint", hint, None), ("library summary", panel.summary, None)], theme)


def test_follow_the_system_stays_a_choice(qtbot, make_window, qsettings):
    window = make_window()
    assert [action.text() for action in window.theme_actions.values()] == ["Follow the system", "Light", "Dark"]
    window.theme_actions["dark"].trigger()
    window.theme_actions["system"].trigger()
    assert qsettings.value("view/theme") == "system" and window.theme_actions["system"].isChecked()
    hints = QApplication.styleHints()
    system_dark = hasattr(hints, "colorScheme") and hints.colorScheme().name == "Dark"
    assert (QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128) == system_dark
