"""Issue 23, item 5 in the window: the settings dialog cannot hold a non-finite or absurd number, and a saved
settings file with one (edited by hand, or from another version) keeps that option's default."""
from __future__ import annotations

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox

from engine.settings import OPTIONS, EngineSettings

from gui_support import make_window, qsettings  # noqa: F401 (fixtures)

NUMERIC = [option for option in OPTIONS if option.low is not None or option.high is not None]
BAD = ["nan", "inf", "-inf", "1e999", "999999999999", "-5", "1e300", "twelve"]


@pytest.mark.parametrize("option", NUMERIC, ids=lambda option: option.name)
def test_a_saved_non_finite_or_absurd_value_keeps_the_default(qsettings, option):
    from app.gui.settings import load_engine_settings

    default = EngineSettings().get(option.path)
    for raw in BAD:
        qsettings.setValue(f"engine/{option.name}", raw)
        try:
            number = type(default)(raw)  # as the window reads it: int("1e300") is not a number of tokens
        except (ValueError, OverflowError):
            number = None
        kept = number is not None and math.isfinite(number) and option.low <= number <= option.high
        assert load_engine_settings(qsettings).get(option.path) == (number if kept else default), raw


def test_the_dialog_cannot_hold_a_value_outside_the_limits(qtbot, make_window):
    dialog = make_window().show_settings()
    dialog.advanced_toggle.click()
    for option in NUMERIC:
        editor = dialog.editors[option.name]
        assert isinstance(editor, (QSpinBox, QDoubleSpinBox)), option.name
        assert editor.minimum() == pytest.approx(option.low / option.scale), option.name
        assert editor.maximum() == pytest.approx(option.high / option.scale), option.name
        for typed in BAD:
            editor.selectAll()
            qtbot.keyClicks(editor, typed)
            qtbot.keyClick(editor, Qt.Key.Key_Tab)
            assert option.low / option.scale <= editor.value() <= option.high / option.scale, (option.name, typed)
    settings = dialog.result_settings()  # whatever was typed, the dialog gives settings the engine accepts
    settings.validate()
    dialog.reject()
