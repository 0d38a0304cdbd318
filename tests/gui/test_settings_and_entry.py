"""The settings dialog (built from the engine's options), the entry point's GUI/CLI split and the PySide6 pin."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gui_support import gui_engine, make_window, qsettings  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def test_settings_dialog_is_built_from_the_engine_options_and_persists(qtbot, make_window, qsettings, tmp_path):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QComboBox

    from app.gui.settings import load_engine_settings
    from engine.settings import OPTIONS

    window = make_window()
    dialog = window.show_settings()
    for option in OPTIONS:  # every engine option, with its plain label, in its part of the dialog
        editor = dialog.editors[option.name]
        assert dialog.advanced.isAncestorOf(editor) == option.advanced, option.name
        if option.choice_list():
            assert [editor.itemText(i) for i in range(editor.count())] == [c.label for c in option.choice_list()]
    assert not dialog.advanced.isVisible()  # the technical knobs stay folded away
    qtbot.mouseClick(dialog.advanced_toggle, Qt.MouseButton.LeftButton)
    assert dialog.advanced.isVisible()
    gamma, group = dialog.editors["gamma"], dialog.editors["group_size"]
    gamma.setValue(2.0)  # out of limits: the box cannot hold it
    group.setValue(0)
    assert gamma.value() == 1.0 and group.value() == 1
    device = dialog.editors["device"]
    assert isinstance(device, QComboBox)
    device.setCurrentIndex(device.findData("cpu"))
    gamma.setValue(0.2)
    group.setValue(8)
    dialog.editors["cache_cap_bytes"].setValue(2.5)
    long_documents = dialog.editors["long_documents"]
    assert long_documents.currentData() == "select"
    long_documents.setCurrentIndex(long_documents.findData("truncate"))
    dialog.model_kind.setCurrentIndex(1)
    dialog.model_path.setText(str(tmp_path))
    dialog.accept()
    assert window.engine_settings.attention.dga.gamma == pytest.approx(0.2)
    # The tooltip says what really runs: the passages context attends to the chosen passages exactly.
    assert "up to 512 tokens" in window.attention_label.toolTip() and "γ" not in window.attention_label.toolTip()
    # A fresh QSettings on the same file (a new run of the app) reads the same values.
    again = load_engine_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat))
    assert (again.device, again.attention.dga.gamma, again.attention.dga.group_size, again.model) == (
        "cpu", pytest.approx(0.2), 8, str(tmp_path))
    assert again.store.cache_cap_bytes == int(2.5 * 1024**3) and again.reading.long_documents == "truncate"
    second = make_window(settings=QSettings(qsettings.fileName(), QSettings.Format.IniFormat))
    dialog = second.show_settings()
    assert dialog.editors["device"].currentData() == "cpu" and dialog.editors["group_size"].value() == 8
    attention = dialog.editors["attention_mode"]
    attention.setCurrentIndex(attention.findData("dense"))
    dialog.accept()
    assert load_engine_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat)).attention.mode == "dense"


def test_saved_values_out_of_limits_fall_back_to_defaults(qsettings):
    from app.gui.settings import load_engine_settings

    qsettings.setValue("engine/gamma", 7.5)
    qsettings.setValue("engine/device", "toaster")
    qsettings.setValue("engine/max_new_tokens", 64)
    settings = load_engine_settings(qsettings)
    assert (settings.attention.dga.gamma, settings.device, settings.answer.max_new_tokens) == (0.1, "auto", 64)


def test_an_option_added_to_the_engine_appears_without_editing_the_dialog(qtbot, make_window, monkeypatch):
    from dataclasses import replace

    import app.gui.settings as gui_settings
    from engine.settings import OPTIONS, Choice

    # As another engineer would add one: a new Option (here on a field the list did not offer yet).
    extra = replace(OPTIONS[0], name="cache_format", path="store.cache_format", label="How readings are kept (test)",
                    choices=(Choice("model", "As the model holds them"), Choice("int8", "Small")), advanced=False)
    yes_no = replace(OPTIONS[0], name="use_cache", path="store.use_cache", label="Keep readings for next time (test)",
                     choices=(),
                     advanced=True)
    monkeypatch.setattr(gui_settings, "OPTIONS",
                        tuple(o for o in OPTIONS if o.name != "cache_format") + (extra, yes_no))
    dialog = make_window().show_settings()
    keep = dialog.editors["use_cache"]
    assert dialog.advanced.isAncestorOf(keep) and keep.isChecked()
    keep.setChecked(False)
    assert dialog.result_settings().store.use_cache is False
    editor = dialog.editors["cache_format"]
    assert not dialog.advanced.isAncestorOf(editor)
    assert [editor.itemText(i) for i in range(editor.count())] == ["As the model holds them", "Small"]
    assert dialog.layout().itemAt(0).layout().labelForField(editor).text() == "How readings are kept (test)"
    dialog.reject()


def test_stored_readings_show_their_space_and_can_be_deleted(qtbot, make_window, gui_engine, fact_pdf):
    """Opening reads nothing; a question stores the parts it read. Settings and the library panel say how much
    space stored readings take of the cap; Delete stored readings empties them; nearly full is said."""
    gui_engine.state_cache.clear()
    window = make_window(engine=gui_engine, auto_prepare=True)
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.open_pdf(fact_pdf)
    assert gui_engine.state_cache.entries() == []
    with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000):
        window.ask("What is the launch code?")
    qtbot.waitUntil(lambda: getattr(window, "storage", {}).get("readings", 0) >= 1, timeout=30_000)
    shown = window.library.panel.storage.text()
    assert shown.startswith("Stored readings: ") and shown.endswith("of 4.0 GB.")
    dialog = window.show_settings()
    dialog.advanced_toggle.click()
    assert dialog.storage_label.text() == shown and dialog.clear_cache_button.isVisible()
    dialog.clear_cache_button.click()
    qtbot.waitUntil(lambda: "cache" in window.banners.texts(), timeout=30_000)  # the worker says it is done
    assert gui_engine.state_cache.entries() == []
    qtbot.waitUntil(lambda: window.storage["used_bytes"] == 0, timeout=30_000)
    dialog.reject()
    window._on_storage({"used_bytes": 95 * 2**20, "cap_bytes": 100 * 2**20, "readings": 3})
    assert "nearly full: 95 MB of 100 MB" in window.banners.texts()["storage"]


def test_window_constructs_without_loading_a_model(qtbot, qsettings):
    from app.gui.main_window import MainWindow

    window = MainWindow(settings=qsettings)
    qtbot.addWidget(window)
    window.show()
    assert window.windowTitle() == "DocFocus"
    assert "not loaded" in window.model_label.text()
    window.close()
    assert not window.engine_thread.isRunning()


@pytest.mark.parametrize("argv, gui", [([], True), (["manual.pdf"], True), (["book.EPUB"], True), (["scan.tiff"], True),
                                       (["notes.docx"], False), (["ask", "a.pdf", "q"], False),
                                       (["--version"], False), (["--help"], False), (["ask"], False)])
def test_entry_point_chooses_window_or_command_line(argv, gui):
    from app.main import wants_gui

    assert wants_gui(argv) is gui


def test_cli_does_not_import_qt():
    code = "import sys, app.cli, app.main; assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_process_events_many_times_does_not_crash():
    """PySide6 6.12.0 on CPython 3.11 dropped a reference to None in processEvents(), aborting after thousands."""
    code = textwrap.dedent("""
        import gc, os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QCoreApplication, QTimer
        from PySide6.QtWidgets import QApplication, QLabel
        app = QApplication([])
        label = QLabel("x"); label.show()
        QTimer.singleShot(0, lambda: None)
        before = sys.getrefcount(None)
        for _ in range(20_000):
            QCoreApplication.processEvents()
        gc.collect()
        after = sys.getrefcount(None)
        assert after > 1000 and abs(after - before) < 5_000, (before, after)
        print("ok", before, after)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_pyproject_pins_pyside6_below_612_on_python_311():
    from packaging.requirements import Requirement

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pyside = [Requirement(d) for d in deps if d.lower().startswith("pyside6")]
    for_311 = [r for r in pyside if r.marker is None or r.marker.evaluate({"python_version": "3.11"})]
    assert for_311, "no PySide6 requirement applies to Python 3.11"
    for requirement in for_311:
        assert not requirement.specifier.contains("6.12.0")
        assert not requirement.specifier.contains("6.12.1")
        assert requirement.specifier.contains("6.11.3")
    import PySide6

    if sys.version_info < (3, 12):
        assert tuple(int(p) for p in PySide6.__version__.split(".")[:2]) < (6, 12)
