"""What a question waits for, in words on its card, until the first word of the answer arrives.

The engine thread runs one job at a time: reading a document (which loads the model first), answering a
question, or reading the library in the background. A question's card says what is in the way, from the engine
worker's signals: ``sig_started(job_id, kind)`` (which job runs now), ``sig_busy(text)`` (its step: "Loading the
model", "Reading the document", ...) and ``sig_progress(stage, done, total)``. Its own job then says what it
does before the first word (the part of a long document the question needs, finding the passages).

``waiting_words`` is the wording, without Qt; ``WaitingWords`` keeps the cards of the chat up to date (and their
time left, from the status bar's estimate, once a second).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from .progress import time_left_text

MODEL_STEP = "Loading the model"  # the engine worker's sig_busy text while the model loads
OWN_STAGES = {"Reading the parts the question needs": "Reading the parts of the document this question needs",
              "Reading the document": "Reading the document"}


def progress_words(stage: str, done: int, total: int, time_left: str = "") -> str:
    """"Reading the document: 40%, about 2 min left" (the stage's own words when it has no numbers yet)."""
    parts = [stage] if stage else []
    if 0 < done < total:
        parts.append(f"{100 * done // total}%" + (f", {time_left}" if time_left else ""))
    return ": ".join(parts)


def waiting_words(own: bool, running: str | None, step: str, stage: str = "", done: int = 0, total: int = 0,
                  time_left: str = "") -> str:
    """The card's words. ``own``: the question's own job runs; ``running``: the kind of the job that runs
    ("open", "ask", "library") or None; ``step``: the worker's busy text; ``stage, done, total``: its progress."""
    detail = progress_words(stage, done, total, time_left)
    if step == MODEL_STEP:
        reason = "Waiting for the model to load"
    elif own:
        if stage in OWN_STAGES:
            return f"{OWN_STAGES[stage]}: {progress_words('', done, total, time_left) or 'starting'}…"
        return (f"{detail}…" if stage else "Starting the answer…")
    elif running == "open":
        reason = "Waiting for the document to open"
    elif running == "ask":
        return "Waiting for the previous question to finish…"
    elif running == "library":
        return "Waiting for the library's background reading to pause…"
    else:
        return "Waiting to start…"
    return f"{reason} — {detail}…" if detail else f"{reason}…"


class WaitingWords(QObject):
    """Keeps the words of the chat's waiting cards (``chat.waiting_cards()``) up to date."""

    def __init__(self, worker, chat, status, parent=None) -> None:
        super().__init__(parent)
        self.chat, self.status = chat, status  # status: the window's ProgressStatus (its time-left estimate)
        self.running: tuple[int, str] | None = None  # (job id, kind) of the job the engine thread runs
        self.step = ""
        self.progress: tuple[str, int, int] = ("", 0, 0)
        self._ticker = QTimer(self, interval=1000)  # the time left moves between updates
        self._ticker.timeout.connect(self.refresh)
        worker.sig_started.connect(self._on_started)
        worker.sig_busy.connect(self._on_busy)
        worker.sig_progress.connect(self._on_progress)
        chat.sig_waiting.connect(lambda _job_id: self.refresh())

    def _on_started(self, job_id: int, kind: str) -> None:
        self.running, self.step, self.progress = (job_id, kind), "", ("", 0, 0)
        self.refresh()

    def _on_busy(self, text: str) -> None:
        if not text:
            self.running = None  # the job ended
        self.step, self.progress = text, ("", 0, 0)
        self.refresh()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.progress = (stage, done, total)
        self.refresh()

    def words_for(self, job_id: int) -> str:
        running_id, kind = self.running or (0, None)
        stage, done, total = self.progress
        time_left = time_left_text(self.status.estimate.seconds_left(self.status.clock())) if stage else ""
        return waiting_words(running_id == job_id, kind, self.step, stage, done, total, time_left)

    def refresh(self) -> None:
        cards = self.chat.waiting_cards()
        stage, done, total = self.progress
        for job_id, card in cards.items():
            card.set_waiting(self.words_for(job_id), done, total)
        self._ticker.start() if cards else self._ticker.stop()
