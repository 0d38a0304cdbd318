"""Issue 24, honest waiting: the model's conversion shows a busy bar with words (never a bar stuck at 0%) until
the model is ready, and a question's card says what it waits for (the model loading, the document opening,
another question, the parts of the document it reads), with progress, until its first word."""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt

from app.gui.waiting import waiting_words

from gui_support import book, gui_engine, make_window, qsettings, wait_open  # noqa: F401 (fixtures)

CONVERTING = "Converting the bundled model (once)"  # what engine/model/loading.py reports while it converts


class GatedEngine:
    """The real (tiny) engine, with the steps a question can wait for held at a gate the test opens: loading the
    model (reported as the bundled model's conversion and load are), the question's reading of the parts it
    needs (with progress), answering."""

    def __init__(self, inner, gated=("load", "read", "ask")) -> None:
        self.inner, self.settings, self.library = inner, inner.settings, inner.library
        self.gates = {name: threading.Event() for name in ("load", "read", "ask")}
        for name in set(self.gates) - set(gated):
            self.gates[name].set()
        self.at_gate = {name: threading.Event() for name in self.gates}
        self.loaded = None if "load" in gated else inner.loaded
        self.answers = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _hold(self, name: str, progress=None, stage: str = "", total: int = 10, should_stop=None) -> None:
        self.at_gate[name].set()
        step = 0
        while not self.gates[name].wait(0.05):
            if should_stop is not None and should_stop():
                return
            if progress is not None and step < total - 1:
                step += 1
                progress(stage, step, total)  # (raises CancelledError when the user cancels a load)

    def load(self, progress=None):
        progress(CONVERTING, 0, 1)
        self._hold("load")
        progress(CONVERTING, 1, 1)
        progress("Loading SmolLM2-135M-Instruct", 0, 1)
        progress("Loading SmolLM2-135M-Instruct", 1, 1)
        self.loaded = self.inner.loaded
        return self.loaded

    def ask(self, handle, question, on_text=None, should_stop=None, progress=None):
        self._hold("read", progress, "Reading the parts the question needs", 10, should_stop)
        self._hold("ask")  # deaf to Stop for a while, as a job between two checks is
        self.answers += 1
        return self.inner.ask(handle, question, on_text=on_text, should_stop=should_stop, progress=progress)


class BarWatcher(QObject):
    """The status bar's state (visible, maximum) after each progress signal, seen in the GUI thread (connected
    after the window, so the window has shown the signal)."""

    def __init__(self, signal, bar) -> None:
        super().__init__()
        self.bar, self.states = bar, []
        signal.connect(self.record)

    def record(self, stage: str, _done: int, _total: int) -> None:
        self.states.append((stage, (self.bar.isVisible(), self.bar.maximum())))


def card_text(window, index: int = -1) -> str:
    return window.chat.cards[index].answer_label.text()


def test_the_models_conversion_shows_a_busy_bar_with_words_until_the_model_is_ready(qtbot, make_window, book,
                                                                                     gui_engine):
    engine = GatedEngine(gui_engine, gated=("load",))
    window = make_window(engine=engine)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.prepare()
    bar = window.progress
    qtbot.waitUntil(lambda: engine.at_gate["load"].is_set() and window.activity.text() == CONVERTING, timeout=30_000)
    qtbot.wait(300)  # the conversion takes a while: the bar stays busy meanwhile
    assert bar.isVisible() and (bar.minimum(), bar.maximum()) == (0, 0)  # busy, not "0%"
    assert window.cancel_button.isVisible() and window.eta.text() == ""
    shown = BarWatcher(window.worker.sig_progress, bar)
    engine.gates["load"].set()
    qtbot.waitUntil(lambda: window.model_info is not None, timeout=30_000)
    # From the conversion's end until the model is ready the bar never vanished nor showed a number.
    assert [stage for stage, _ in shown.states] == [CONVERTING, "Loading SmolLM2-135M-Instruct",
                                                    "Loading SmolLM2-135M-Instruct"]
    assert all(state == (True, 0) for _, state in shown.states)
    qtbot.waitUntil(lambda: window.handle is not None and not bar.isVisible(), timeout=60_000)
    assert window.activity.text() == "Ready"


def test_a_stage_at_its_end_keeps_a_busy_bar_while_the_job_goes_on(qtbot, make_window):
    window = make_window()
    window.worker.sig_busy.emit("Loading the model")
    window.worker.sig_progress.emit(CONVERTING, 0, 1)
    assert window.progress.isVisible() and window.progress.maximum() == 0
    window.worker.sig_progress.emit(CONVERTING, 1, 1)
    assert window.progress.isVisible() and window.progress.maximum() == 0
    window.worker.sig_progress.emit("Reading the document", 3, 12)
    assert (window.progress.maximum(), window.progress.value()) == (12, 3)
    window.worker.sig_busy.emit("")
    assert not window.progress.isVisible()


def test_a_question_says_it_waits_for_the_model_then_reads_what_it_needs(qtbot, make_window, book, gui_engine):
    engine = GatedEngine(gui_engine, gated=("load", "read"))
    window = make_window(engine=engine)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    window.ask("Where did the zeppelin fly?")  # the model is not loaded yet: the question waits
    qtbot.waitUntil(lambda: engine.at_gate["load"].is_set(), timeout=30_000)
    qtbot.waitUntil(lambda: card_text(window).startswith("Waiting for the model to load"), timeout=5_000)
    assert CONVERTING in card_text(window) and window.chat.cards[-1].wait_bar.isVisible()
    engine.gates["load"].set()
    qtbot.waitUntil(lambda: engine.at_gate["read"].is_set(), timeout=30_000)
    qtbot.waitUntil(lambda: "%" in card_text(window), timeout=10_000)
    text = card_text(window)
    assert text.startswith("Reading the parts of the document this question needs: ") and "%" in text
    bar = window.chat.cards[-1].wait_bar
    assert bar.maximum() == 10 and 0 < bar.value() < 10  # the reading's own progress, on the card too
    engine.gates["read"].set()
    with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000):
        pass
    card = window.chat.cards[-1]
    assert not card.wait_bar.isVisible() and not card.answer_label.text().startswith("Waiting")


def test_a_question_says_it_waits_for_the_previous_one(qtbot, make_window, book, gui_engine):
    engine = GatedEngine(gui_engine, gated=("ask",))
    window = make_window(engine=engine)
    window.open_pdf(book)
    wait_open(qtbot, window, 30)
    with qtbot.waitSignal(window.sig_document_ready, timeout=60_000):
        window.prepare()
    qtbot.waitUntil(lambda: not window.progress.isVisible(), timeout=60_000)
    window.ask("Where did the zeppelin fly?")
    qtbot.waitUntil(lambda: engine.at_gate["ask"].is_set(), timeout=30_000)
    qtbot.waitUntil(lambda: card_text(window) == "Starting the answer…", timeout=5_000)  # its own job: no word yet
    qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)  # the job goes on to its next check
    window.ask("Which page has the zeppelin?")
    assert card_text(window) == "Waiting for the previous question to finish…"
    assert card_text(window, 0) == "Stopped before the answer began."
    engine.gates["ask"].set()
    with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000) as shown:
        pass
    if shown.args[0]["question"] != "Which page has the zeppelin?":  # the stopped one ended first
        with qtbot.waitSignal(window.sig_answer_shown, timeout=120_000):
            pass
    assert engine.answers == 2 and window.chat.cards[-1].finished


def test_the_words_for_each_wait():
    assert waiting_words(False, "open", "Loading the model", CONVERTING, 0, 1) == \
        f"Waiting for the model to load — {CONVERTING}…"
    assert waiting_words(False, "open", "Preparing the document", "Recognising the scanned pages", 2, 8,
                         "about 2 min left") == \
        "Waiting for the document to open — Recognising the scanned pages: 25%, about 2 min left…"
    assert waiting_words(False, "ask", "Answering") == "Waiting for the previous question to finish…"
    assert waiting_words(False, "library", "Reading the document") == \
        "Waiting for the library's background reading to pause…"
    assert waiting_words(True, "ask", "Answering", "Reading the parts the question needs", 1, 4) == \
        "Reading the parts of the document this question needs: 25%…"
    assert waiting_words(True, "ask", "Answering", "Finding the passages", 2, 4) == "Finding the passages: 50%…"
    assert waiting_words(True, "ask", "Loading the model", "Loading SmolLM2", 0, 1) == \
        "Waiting for the model to load — Loading SmolLM2…"
    assert waiting_words(False, None, "") == "Waiting to start…"
