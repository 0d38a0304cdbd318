"""Progress in the status bar: what the engine is doing, a bar from the first second, the time left, Cancel.

The bar shows real progress while a stage counts its units; before its first unit is done (a stage of one
step, such as converting the bundled model, has nothing to count) and after its last one, while the job goes
on, it is a busy bar beside the stage's words: never a bar that sits at 0%, nor none while the work goes on.

``TimeLeft`` is the estimate, without Qt: rate-based (seconds per unit, smoothed over updates, so one
fast or slow update moves it only part of the way), available from the first unit done, and never frozen:
between updates it counts down, and once the next update is overdue it grows with the wait instead of sitting
at one value. An update may advance many units at once (a reading counts tokens, a segment at a time): the
wait is compared with the time a whole update takes, never with one unit's. Stage names come
from the engine ("Reading the document", "Finding the passages", ...); any stage is handled the same.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

SMOOTHING = 0.3  # weight of the newest rate sample
OVERDUE_FACTOR = 1.25  # an overdue update is assumed to take this much longer than it has so far
SLACK = 2.0  # an update is overdue once it took this many times its expected time (updates vary in size)


class TimeLeft:
    """Seconds left in one stage, from ``update(done, total, now)`` calls (``now`` from ``time.monotonic``)."""

    def __init__(self) -> None:
        self.start(0.0)

    def start(self, now: float) -> None:
        """A new stage (or job) begins at ``now``: forget the old rate."""
        self.per_unit: float | None = None  # seconds per unit, smoothed
        self.step: float | None = None  # units an update advances, the most seen lately
        self.done, self.total = 0, 0
        self.last_time = now

    def update(self, done: int, total: int, now: float) -> None:
        if done > self.done and now > self.last_time:
            units = done - self.done
            sample = (now - self.last_time) / units
            self.per_unit = _smooth(self.per_unit, sample)
            self.step = max(units, 0.9 * (self.step or units))
        if done != self.done or total != self.total:
            self.done, self.total, self.last_time = done, total, now

    def seconds_left(self, now: float) -> float | None:
        """None until the first unit is done (or when the stage is complete)."""
        if self.per_unit is None or self.done >= self.total:
            return None
        per_unit, waited = self.per_unit, max(0.0, now - self.last_time)
        expected = per_unit * min(self.step, self.total - self.done) * SLACK  # the next update is due by then
        if waited > expected:  # overdue: the update in flight takes longer than the ones before it
            per_unit *= waited * OVERDUE_FACTOR / expected
        return max(0.0, (self.total - self.done) * per_unit - waited)


def _smooth(old: float | None, sample: float) -> float:
    return sample if old is None else SMOOTHING * sample + (1 - SMOOTHING) * old


def time_left_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 5:
        return "a few seconds left"
    if seconds < 90:
        return f"about {seconds:.0f} s left"
    return f"about {seconds / 60:.0f} min left"


class ProgressStatus(QWidget):
    """Activity text, a progress bar (busy until numbers arrive), the time left and Cancel.

    ``sig_cancel()``: the Cancel button. Feed it ``set_busy(text)`` and ``set_progress(stage, done, total)``
    (the engine worker's ``sig_busy`` and ``sig_progress``)."""

    sig_cancel = Signal()

    def __init__(self, parent=None, clock=time.monotonic) -> None:
        super().__init__(parent)
        self.clock = clock
        self.estimate = TimeLeft()
        self.activity = QLabel("Ready")
        self.bar = QProgressBar()
        self.bar.setFixedWidth(200)
        self.bar.setTextVisible(True)
        self.eta = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop loading the model, recognising scanned pages or reading the document")
        self.cancel_button.clicked.connect(self.sig_cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.activity, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.eta)
        layout.addWidget(self.cancel_button)
        self._stage = ""
        self.last_progress: tuple[str, int, int] = ("", 0, 0)  # (stage, done, total) of the job's latest step
        self._final_message: str | None = None
        self._ticker = QTimer(self, interval=1000)  # the estimate moves between updates
        self._ticker.timeout.connect(self._show_time_left)
        self._show_bar(False)

    def set_busy(self, text: str) -> None:
        """A job step began (bar busy until it reports numbers), or ``""``: the worker is idle."""
        if not text:
            self._show_bar(False)
            self._stage = ""
            self.activity.setText(self._final_message or "Ready")
            return
        self._final_message = None
        self.activity.setText(text)
        self._stage, self.last_progress = "", ("", 0, 0)
        self.estimate.start(self.clock())
        self.bar.setRange(0, 0)  # busy: tokenizing, setting up, the first unit
        self.eta.setText("")
        self._show_bar(True)

    def set_progress(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        self.last_progress = (stage, done, total)
        if stage != self._stage:
            self._stage = stage
            if done > 0:  # numbers arrive mid-stage: time since the step began counts for the rate
                self.estimate.update(0, total, self.estimate.last_time)
            else:
                self.estimate.start(now)
        self.estimate.update(done, total, now)
        self.activity.setText(stage)
        self._show_bar(True)  # until the worker is idle: a finished stage is often followed by more work
        if 0 < done < total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        else:  # nothing done yet (a one-step stage: converting the model) or the stage is over: busy, not "0%"
            self.bar.setRange(0, 0)
        self._show_time_left()

    def set_message(self, text: str) -> None:
        """A final word on the last job ("Reading cancelled", "Error", ...) that stays until the next job."""
        self._final_message = text
        self._show_bar(False)
        self.activity.setText(text)

    def _show_time_left(self) -> None:
        self.eta.setText(time_left_text(self.estimate.seconds_left(self.clock())) if self.bar.maximum() else "")

    def _show_bar(self, visible: bool) -> None:
        for widget in (self.bar, self.eta, self.cancel_button):
            widget.setVisible(visible)
        self._ticker.start() if visible else self._ticker.stop()
