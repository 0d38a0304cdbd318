"""The engine's thread: model loading, document reading, answering, history and library queries.

``EngineWorker`` is a QObject moved to its own QThread (Anki's task manager:
one worker owns the engine and the database). The GUI talks to it only by
emitting its ``req_*`` signals (queued into the worker's thread) and hears back
through its ``sig_*`` signals. Stopping does not go through the event loop (the
worker is busy): ``cancel()`` bumps a counter that the running job's
``should_stop`` compares against.

Signals to the GUI:
- ``sig_busy(text)``: what the worker is doing now, "" when idle.
- ``sig_progress(stage, done, total)``: model load and document reading progress.
- ``sig_model(info)``: the loaded model's ``info()`` dict (id, device, dtype, device_name).
- ``sig_document(path, handle)``: an ``engine.api.DocumentHandle`` ready for questions.
- ``sig_document_row(path, sha256, last_page)``: the library's row for a file being opened.
- ``sig_history(sha256, entries)``: the saved chat of a document (list of dicts).
- ``sig_text(piece)``: a streamed piece of the answer being generated.
- ``sig_answer(answer)``: an ``engine.api.Answer``.
- ``sig_cancelled(job)``: a job stopped at the user's request.
- ``sig_error(job, message)``: a job failed; ``message`` is for the user.
- ``sig_recent(rows)``: recent documents from the library.
- ``sig_cache_cleared()``: the state cache was emptied.
"""
from __future__ import annotations

import sys
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import CancelledError, DocFocusError

from .pdf_worker import PDF_LOCK


class EngineWorker(QObject):
    sig_busy = Signal(str)
    sig_progress = Signal(str, int, int)
    sig_model = Signal(dict)
    sig_document = Signal(str, object)
    sig_document_row = Signal(str, str, int)
    sig_history = Signal(str, object)
    sig_text = Signal(str)
    sig_answer = Signal(object)
    sig_cancelled = Signal(str)
    sig_error = Signal(str, str)
    sig_recent = Signal(object)
    sig_cache_cleared = Signal()

    req_configure = Signal(object)  # EngineSettings
    req_lookup = Signal(str)  # path: library row (last page)
    req_prepare = Signal(str, object, int)  # path, password or None, stop generation: load, open and read
    req_ask = Signal(object, str, int)  # handle, question, stop generation
    req_history = Signal(str)
    req_clear_history = Signal(str)
    req_recent = Signal(int)
    req_last_page = Signal(str, int)
    req_clear_cache = Signal()

    def __init__(self, settings=None, engine=None, library=None) -> None:
        super().__init__()
        self._settings = settings
        self.engine = engine
        self._library = library
        self.stop_generation = 0
        for request, slot in [(self.req_configure, self._configure), (self.req_lookup, self._lookup),
                              (self.req_prepare, self._prepare), (self.req_ask, self._ask),
                              (self.req_history, self._history), (self.req_clear_history, self._clear_history),
                              (self.req_recent, self._recent), (self.req_last_page, self._last_page),
                              (self.req_clear_cache, self._clear_cache)]:
            request.connect(slot)

    def cancel(self) -> None:
        """Ask the running job to stop (called from the GUI thread)."""
        self.stop_generation += 1

    # --- helpers (worker thread) ------------------------------------------------------------
    @property
    def library(self):
        if self.engine is not None:
            return self.engine.library
        if self._library is None:
            from engine.library import Library

            self._library = Library()
        return self._library

    def _engine(self):
        if self.engine is None:
            from engine.api import Engine, EngineSettings

            self.engine = Engine(self._settings or EngineSettings(), library=self._library)
        return self.engine

    def _load(self, generation: int):
        engine = self._engine()
        if engine.loaded is None:
            self.sig_busy.emit("Loading the model")

            def progress(stage: str, done: int, total: int) -> None:
                if self.stop_generation != generation:
                    raise CancelledError("loading the model")
                self.sig_progress.emit(stage, done, total)

            engine.load(progress)
        self.sig_model.emit(dict(engine.loaded.info()))
        return engine

    def _run(self, job: str, work) -> None:
        """Run ``work`` and turn any exception into a signal: the window must never crash."""
        try:
            work()
        except CancelledError:
            self.sig_cancelled.emit(job)
        except DocFocusError as error:
            self.sig_error.emit(job, error.user_message())
        except Exception as error:  # noqa: BLE001 - a worker must report, never die
            traceback.print_exc(file=sys.stderr)
            self.sig_error.emit(job, f"{type(error).__name__}: {error}")
        finally:
            self.sig_busy.emit("")

    # --- jobs ---------------------------------------------------------------------------------
    @Slot(object)
    def _configure(self, settings) -> None:
        if settings != self._settings or self.engine is None:
            self._settings = settings
            self.engine = None  # the next job builds (and loads) an engine with the new settings

    @Slot(str)
    def _lookup(self, path: str) -> None:
        def work() -> None:
            from engine.ingest import file_sha256

            sha = file_sha256(path)
            row = self.library.get_row(sha)
            self.sig_document_row.emit(path, sha, int(row["last_page"] or 0) if row else 0)
        self._run("library", work)

    @Slot(str, object, int)
    def _prepare(self, path: str, password, generation: int) -> None:
        def work() -> None:
            engine = self._load(generation)
            self.sig_busy.emit("Opening the document")
            with PDF_LOCK:
                handle = engine.open_document(path, password)
            if hasattr(self.library, "touch"):
                self.library.touch(handle.sha256, path)  # a library hit is a fresh open for "recent"
            self.sig_document.emit(path, handle)
            self._emit_history(handle.sha256)
            self.sig_busy.emit("Reading the document")
            engine.read(handle, progress=self.sig_progress.emit,
                        should_stop=lambda: self.stop_generation != generation)
        self._run("open", work)

    @Slot(object, str, int)
    def _ask(self, handle, question: str, generation: int) -> None:
        def work() -> None:
            engine = self._load(generation)
            self.sig_busy.emit("Answering")
            answer = engine.ask(handle, question, on_text=self.sig_text.emit,
                                should_stop=lambda: self.stop_generation != generation,
                                progress=self.sig_progress.emit)
            self.sig_answer.emit(answer)
        self._run("ask", work)

    def _emit_history(self, sha256: str) -> None:
        engine = self._engine()
        if hasattr(engine, "history"):
            self.sig_history.emit(sha256, list(engine.history(sha256)))

    @Slot(str)
    def _history(self, sha256: str) -> None:
        self._run("history", lambda: self._emit_history(sha256))

    @Slot(str)
    def _clear_history(self, sha256: str) -> None:
        def work() -> None:
            engine = self._engine()
            if hasattr(engine, "clear_history"):
                engine.clear_history(sha256)
        self._run("history", work)

    @Slot(int)
    def _recent(self, limit: int) -> None:
        self._run("library", lambda: self.sig_recent.emit(self.library.recent(limit)))

    @Slot(str, int)
    def _last_page(self, sha256: str, page: int) -> None:
        self._run("library", lambda: self.library.set_last_page(sha256, page))

    @Slot()
    def _clear_cache(self) -> None:
        def work() -> None:
            engine = self._engine()
            if hasattr(engine, "clear_cache"):
                engine.clear_cache()
            elif hasattr(engine, "state_cache"):
                engine.state_cache.clear()  # every stored document state; the in-memory one stays usable
            self.sig_cache_cleared.emit()
        self._run("cache", work)


class EngineThread(QThread):
    """The QThread that hosts an ``EngineWorker``; ``shutdown()`` stops the job and joins."""

    def __init__(self, worker: EngineWorker, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("docfocus-engine")
        self.worker = worker
        worker.moveToThread(self)

    def shutdown(self, timeout_ms: int = 10_000) -> None:
        self.worker.cancel()
        self.quit()
        self.wait(timeout_ms)
