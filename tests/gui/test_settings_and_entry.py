"""Settings persistence, the entry point's GUI/CLI split, the relevance maths and the PySide6 pin."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from gui_support import make_window, qsettings  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def test_settings_dialog_persists(qtbot, make_window, qsettings, tmp_path):
    from PySide6.QtCore import QSettings

    from app.gui.settings import load_engine_settings

    window = make_window()
    dialog = window.show_settings()
    assert dialog.attention.currentData() == "dga" and dialog.gamma.isEnabled()
    dialog.device.setCurrentText("cpu")
    dialog.gamma.setValue(0.2)
    dialog.group_size.setValue(8)
    dialog.cache_cap.setValue(2.5)
    assert dialog.long_documents.currentData() == "select"
    dialog.long_documents.setCurrentIndex(1)
    dialog.model_kind.setCurrentIndex(1)
    dialog.model_path.setText(str(tmp_path))
    dialog.accept()
    assert window.engine_settings.gamma == pytest.approx(0.2)
    assert "γ 0.2, m 8" in window.attention_label.text()
    # A fresh QSettings on the same file (a new run of the app) reads the same values.
    again = load_engine_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat))
    assert (again.device, again.gamma, again.group_size, again.model) == ("cpu", pytest.approx(0.2), 8, str(tmp_path))
    assert again.cache_cap_bytes == int(2.5 * 1024**3) and again.long_documents == "truncate"
    second = make_window(settings=QSettings(qsettings.fileName(), QSettings.Format.IniFormat))
    dialog = second.show_settings()
    assert dialog.device.currentText() == "cpu" and dialog.group_size.value() == 8
    dialog.attention.setCurrentIndex(1)  # dense: gamma and group size do not apply
    assert not dialog.gamma.isEnabled()
    dialog.accept()
    assert load_engine_settings(QSettings(qsettings.fileName(), QSettings.Format.IniFormat)).attention_mode == "dense"


def test_clear_cache_button_follows_engine(qtbot, make_window):
    from engine.api import Engine

    window = make_window()
    dialog = window.show_settings()
    has_cache = hasattr(Engine, "clear_cache") or hasattr(Engine, "state_cache")
    assert dialog.clear_cache_button.isVisibleTo(dialog) == has_cache
    if has_cache:
        with qtbot.waitSignal(window.worker.sig_cache_cleared, timeout=30_000):
            dialog.clear_cache_button.click()
        qtbot.waitUntil(lambda: "cache" in window.banners.texts(), timeout=5_000)
    dialog.reject()


def test_window_constructs_without_loading_a_model(qtbot, qsettings):
    from app.gui.main_window import MainWindow

    window = MainWindow(settings=qsettings)
    qtbot.addWidget(window)
    window.show()
    assert window.windowTitle() == "DocFocus"
    assert window.worker.engine is None or window.worker.engine.loaded is None
    assert "not loaded" in window.model_label.text()
    window.close()
    assert not window.engine_thread.isRunning()


@pytest.mark.parametrize("argv, gui", [([], True), (["manual.pdf"], True), (["ask", "a.pdf", "q"], False),
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


def test_word_scores_take_the_max_per_word_and_ignore_unmapped_tokens():
    from app.gui.relevance import word_scores

    token_word = np.array([0, 0, -1, 1, 2, 2, 2])
    scores = word_scores(np.array([0.1, 0.5, 9.0, 0.2, 0.0, 0.3, 0.1]), token_word, 4)
    assert scores.tolist() == pytest.approx([0.5, 0.2, 0.3, 0.0])
    # The model read only a prefix: extra token_word entries are ignored.
    assert word_scores(np.array([1.0]), token_word, 4).tolist() == [1.0, 0, 0, 0]


def test_highlights_keep_the_best_words_and_fall_back_to_evidence():
    from app.gui.relevance import answer_highlights
    from engine.ingest import Word

    words = [Word(i // 10, i, 0, i + 1, 1, f"w{i}", i * 3, i * 3 + 2) for i in range(40)]
    token_word = np.arange(40)
    token_scores = np.zeros(40)
    token_scores[[5, 25]] = [1.0, 0.5]
    lights = answer_highlights(token_scores, [], token_word, words)
    assert [(l.page, l.x0, l.intensity) for l in lights] == [(0, 5, 1.0), (2, 25, 0.5)]
    evidence = [{"page": 4, "text": "t", "score": 2.0, "boxes": [[1, 2, 3, 4]]}]
    assert [(l.page, l.x0) for l in answer_highlights(None, evidence, token_word, words)] == [(3, 1)]
    assert [(l.page, l.x0) for l in answer_highlights(np.zeros(40), evidence, token_word, words)] == [(3, 1)]
