"""Progress with time left and Cancel, a model load cancelled mid-way, Ctrl+wheel zoom, the dark palette."""
from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from gui_support import book, make_window, qsettings, wait_open  # noqa: F401 (fixtures)


class SlowLoadingEngine:
    """Stands in for engine.api.Engine: a model load that reports progress for ~10 s unless cancelled (after the
    document was read for real)."""

    def __init__(self, library) -> None:
        from engine.api import EngineSettings

        self.settings = EngineSettings(model="slow", device="cpu")
        self.loaded = None
        self.library = library
        self.cancelled = threading.Event()

    def ingest(self, path, password=None, progress=None, should_stop=None, pdf_lock=None):
        """The real reading of the file (a born-digital PDF: no OCR); the window ingests before loading."""
        from engine.ingest.extract import ingest_pdf

        return ingest_pdf(path, password, progress=progress, should_stop=should_stop, pdf_lock=pdf_lock)

    def load(self, progress):
        for step in range(1000):
            progress("Loading slow-model", step, 1000)  # raises CancelledError once the user cancels
            time.sleep(0.01)
        raise AssertionError("the load was never cancelled")


def test_progress_shows_time_left_and_cancel_stops_loading(qtbot, make_window, book, library):
    engine = SlowLoadingEngine(library)
    window = make_window(engine=engine)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.prepare()
    qtbot.waitUntil(lambda: window.cancel_button.isVisible() and window.eta.text().endswith("left"), timeout=10_000)
    assert window.progress.maximum() == 1000 and 0 < window.progress.value() < 1000
    assert window.activity.text() == "Loading slow-model"
    started = time.monotonic()
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.cancel_button.isVisible(), timeout=5_000)
    assert time.monotonic() - started < 2
    qtbot.waitUntil(lambda: window.activity.text().startswith("Reading cancelled"), timeout=5_000)
    # The reader still works after the cancelled load.
    window.view.go_to_page(12)
    assert window.view.current_page() == 12


def test_ctrl_wheel_zooms(qtbot, make_window, book):
    window = make_window()
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    view = window.view
    before = view.zoom
    event = QWheelEvent(QPointF(100, 100), QPointF(view.viewport().mapToGlobal(QPoint(100, 100))), QPoint(0, 0),
                        QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(event)
    assert view.zoom == pytest.approx(before * 1.2)
    assert view.fit_mode is None  # an explicit zoom ends "fit width"


def test_palette_follows_dark_scheme(qtbot):
    from PySide6.QtGui import QGuiApplication, QPalette
    from PySide6.QtWidgets import QApplication

    from app.gui import apply_palette

    app = QApplication.instance()
    hints = QGuiApplication.styleHints()
    if not hasattr(hints, "setColorScheme"):
        pytest.skip("Qt without QStyleHints.setColorScheme")
    try:
        hints.setColorScheme(Qt.ColorScheme.Dark)
        apply_palette(app)
        if hints.colorScheme() != Qt.ColorScheme.Dark:
            pytest.skip("this platform plugin does not report a dark scheme")
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        hints.setColorScheme(Qt.ColorScheme.Light)
        qtbot.waitUntil(lambda: app.palette().color(QPalette.ColorRole.Window).lightness() > 150, timeout=3_000)
    finally:
        hints.unsetColorScheme() if hasattr(hints, "unsetColorScheme") else None


def test_time_left_comes_from_the_first_unit_is_smoothed_and_never_sits_still():
    from app.gui.progress import TimeLeft

    estimate = TimeLeft()
    estimate.start(0.0)
    estimate.update(0, 30, 0.0)
    assert estimate.seconds_left(5.0) is None  # no unit done yet: no number to show
    estimate.update(1, 30, 10.0)  # the first segment took 10 s
    assert estimate.seconds_left(10.0) == pytest.approx(290.0)
    estimate.update(2, 30, 11.0)  # one fast segment does not halve the estimate (smoothed)
    assert 150 < estimate.seconds_left(11.0) < 290
    # Between updates it counts down, and an overdue segment makes it grow: never one value for minutes.
    values = [estimate.seconds_left(11.0 + t) for t in (0, 5, 60, 120)]
    assert values[1] < values[0] and values[3] > values[2] and len(set(values)) == 4


@pytest.mark.parametrize("seed", range(5))
def test_time_left_is_within_twice_the_truth_once_a_tenth_is_done(seed):
    """A reading counts tokens, many per update and unevenly (chunks inside segments of different sizes, each
    at its own speed): once 10% is done, the time left shown at any moment is within 2x of the real one (it
    once took a many-token update for one overdue unit and said "27215 min" for minutes of work). Under 5 s
    the window says "a few seconds left", which is not compared."""
    import random

    from app.gui.progress import TimeLeft

    rng = random.Random(seed)
    steps, total = [], 0
    for _ in range(rng.randint(6, 30)):  # segments of 300-900 tokens, read in chunks of at most 256
        size = rng.randint(300, 900)
        steps += [min(256, size - start) for start in range(0, size, 256)]
        total += size
    rate = rng.uniform(50, 500)  # tokens per second, this machine today
    times, now = [], 0.0
    for step in steps:
        now += step / rate * rng.uniform(0.7, 1.3)
        times.append(now)
    estimate = TimeLeft()
    estimate.start(0.0)
    estimate.update(0, total, 0.0)
    done, worst = 0, 1.0
    for step, finished, started in zip(steps, times, [0.0, *times[:-1]]):
        for moment in (started + (finished - started) * f for f in (0.0, 0.5, 0.99)):
            shown = estimate.seconds_left(moment)
            truth = times[-1] - moment
            if done >= total / 10 and shown is not None and truth >= 5:
                worst = max(worst, shown / truth, truth / max(shown, 1e-9))
        done += step
        estimate.update(done, total, finished)
    assert worst <= 2.0


def test_the_bar_shows_from_the_first_second_for_any_stage(qtbot, make_window, book):
    window = make_window()
    clock = [100.0]
    window.status_progress.clock = lambda: clock[0]
    window.worker.sig_busy.emit("Preparing the document")  # tokenizing and setup: no numbers yet
    assert window.progress.isVisible() and window.progress.maximum() == 0  # a busy bar, not nothing
    assert window.cancel_button.isVisible() and window.eta.text() == ""
    clock[0] = 106.0
    window.worker.sig_progress.emit("Finding the passages", 1, 4)  # a stage name the window never saw
    assert window.activity.text() == "Finding the passages"
    assert (window.progress.maximum(), window.progress.value()) == (4, 1)
    assert window.eta.text() == "about 18 s left"  # from the first unit (6 s each)
    clock[0] = 116.0
    window.status_progress._show_time_left()
    assert window.eta.text() == "about 8 s left"  # counting down between updates
    clock[0] = 122.0
    window.status_progress._show_time_left()
    # The second unit is 16 s in, overdue (twice its 6 s): the estimate grows with the wait, never sits at 0.
    assert window.eta.text() == "about 14 s left"
    window.worker.sig_busy.emit("")
    assert not window.progress.isVisible() and window.activity.text() == "Ready"
