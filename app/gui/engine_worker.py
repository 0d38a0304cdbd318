"""The engine's worker: model loading, document reading, answering, history and library queries.

``EngineWorker`` is a QObject moved to its own ``WorkerThread`` (Anki's task manager: one worker owns
the engine and the database). The GUI talks to it only by emitting its ``req_*`` signals (queued
into the worker's thread) and hears back only through its ``sig_*`` signals; it never reads the
worker's attributes. Stopping cannot wait for the event loop (the worker is busy), so a long job
carries a ``Job`` whose stop event the GUI sets; the running job checks it between steps (the engine
between segments, chunks and tokens through ``should_stop``).

Signals to the GUI:
- ``sig_started(job_id, kind)``: a job the user may stop began ("open", "ask"; the library's worker, which shares
  this thread, reports its readings as "library"): what a waiting question waits for (app/gui/waiting.py).
- ``sig_busy(text)``: what the worker is doing now, "" when idle.
- ``sig_progress(stage, done, total)``: progress of a step (stage names come from the engine; recognising
  scanned pages is ``engine.ingest.extract.OCR_STAGE``, counted in pages).
- ``sig_model(info)``: the loaded model's ``info()`` dict (id, device, dtype, device_name).
- ``sig_recognised_words(path, pages)``: ``{page: [PageWord, ...]}`` of the pages read by OCR (empty for a
  document with a text layer on every page), as soon as the document is ingested (before the model loads).
- ``sig_document(path, handle)``: an ``engine.api.DocumentHandle`` ready for questions.
- ``sig_document_row(path, sha256, last_page)``: the library's row for a file being opened.
- ``sig_history(sha256, entries)``: the saved chat of a document (list of dicts).
- ``sig_text(job_id, piece)``: a streamed piece of an answer.
- ``sig_answer(job_id, answer)``: an ``engine.answer.result.Answer``.
- ``sig_cancelled(job_id, kind)``: a job stopped at the user's request before it had a result.
- ``sig_error(job_id, kind, message)``: a job failed (job id 0 for library and cache requests);
  ``message`` is for the user.
- ``sig_recent(rows)``: recent documents from the library.
- ``sig_cache_cleared()``: the stored document states were deleted.
- ``sig_storage(figures)``: the space stored readings take ({"used_bytes", "cap_bytes", "readings"}), after
  each answer, after clearing, and on ``req_storage``.
"""
from __future__ import annotations

import itertools
import sys
import threading
import traceback
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from engine.errors import CancelledError, DocFocusError

from .page_text import recognised_page_words
from .pdf_worker import PDF_LOCK

_job_ids = itertools.count(1)


@dataclass
class Job:
    """One request that the user may stop: its id (for routing results) and the stop event the GUI sets."""

    kind: str  # "open" or "ask"
    id: int = field(default_factory=lambda: next(_job_ids))
    stop: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def check(self, what: str) -> None:
        if self.stop.is_set():
            raise CancelledError(what)


class EngineWorker(QObject):
    sig_started = Signal(int, str)
    sig_busy = Signal(str)
    sig_progress = Signal(str, int, int)
    sig_model = Signal(dict)
    sig_recognised_words = Signal(str, object)
    sig_document = Signal(str, object)
    sig_document_row = Signal(str, str, int)
    sig_history = Signal(str, object)
    sig_text = Signal(int, str)
    sig_answer = Signal(int, object)
    sig_cancelled = Signal(int, str)
    sig_error = Signal(int, str, str)
    sig_recent = Signal(object)
    sig_cache_cleared = Signal()
    sig_storage = Signal(object)

    req_configure = Signal(object)  # EngineSettings
    req_lookup = Signal(str)  # path: library row (last page)
    req_prepare = Signal(object, str, object)  # Job, path, password or None: ingest, load the model, open
    req_ask = Signal(object, object, str)  # Job, handle, question
    req_history = Signal(str)
    req_clear_history = Signal(str)
    req_recent = Signal(int)
    req_last_page = Signal(str, int)
    req_clear_cache = Signal()
    req_storage = Signal()

    def __init__(self, settings=None, engine=None, library=None) -> None:
        super().__init__()
        self._settings = settings
        self._engine_object = engine
        self._library = library
        for request, slot in [(self.req_configure, self._configure), (self.req_lookup, self._lookup),
                              (self.req_prepare, self._prepare), (self.req_ask, self._ask),
                              (self.req_history, self._history), (self.req_clear_history, self._clear_history),
                              (self.req_recent, self._recent), (self.req_last_page, self._last_page),
                              (self.req_clear_cache, self._clear_cache), (self.req_storage, self._storage)]:
            request.connect(slot)

    # --- helpers (worker thread) ------------------------------------------------------------
    @property
    def library(self):
        if self._engine_object is not None:
            return self._engine_object.library
        if self._library is None:
            from engine.library.documents import Library

            self._library = Library()
        return self._library

    def _engine(self):
        if self._engine_object is None:
            from engine.api import Engine, EngineSettings

            self._engine_object = Engine(self._settings or EngineSettings(), library=self._library)
        return self._engine_object

    def _load(self, job: Job):
        engine = self._engine()
        if engine.loaded is None:
            self.sig_busy.emit("Loading the model")

            def progress(stage: str, done: int, total: int) -> None:
                job.check("loading the model")
                self.sig_progress.emit(stage, done, total)

            engine.load(progress)
        job.check("loading the model")
        self.sig_model.emit(dict(engine.loaded.info()))
        return engine

    def _run(self, kind: str, work, job: Job | None = None) -> None:
        """Run ``work`` and turn any exception into a signal: the window must never crash."""
        job_id = job.id if job else 0
        if job is not None:
            self.sig_started.emit(job_id, kind)
        try:
            work()
        except CancelledError:
            self.sig_cancelled.emit(job_id, kind)
        except DocFocusError as error:
            self.sig_error.emit(job_id, kind, error.user_message())
        except Exception as error:  # noqa: BLE001 - a worker must report, never die
            traceback.print_exc(file=sys.stderr)
            self.sig_error.emit(job_id, kind, f"{type(error).__name__}: {error}")
        finally:
            self.sig_busy.emit("")

    # --- jobs ---------------------------------------------------------------------------------
    @Slot(object)
    def _configure(self, settings) -> None:
        if settings != self._settings or self._engine_object is None:
            self._settings = settings
            self._engine_object = None  # the next job builds (and loads) an engine with the new settings

    @Slot(str)
    def _lookup(self, path: str) -> None:
        def work() -> None:
            from engine.ingest.extract import file_sha256

            sha = file_sha256(path)
            row = self.library.get_row(sha)
            self.sig_document_row.emit(path, sha, int(row["last_page"] or 0) if row else 0)
        self._run("library", work)

    @Slot(object, str, object)
    def _prepare(self, job: Job, path: str, password) -> None:
        def work() -> None:
            self.sig_busy.emit("Preparing the document")
            # Ingesting (and recognising scanned pages) needs no model, so the viewer gets a scan's words first.
            # The engine holds the viewer's lock only while PyMuPDF runs: pages keep drawing during OCR.
            ingested = self._engine().ingest(path, password, progress=self.sig_progress.emit,
                                             should_stop=job.should_stop, pdf_lock=PDF_LOCK)
            job.check("opening the document")
            self.sig_recognised_words.emit(path, recognised_page_words(ingested))
            engine = self._load(job)
            self.sig_busy.emit("Preparing the document")
            handle = engine.open_document(ingested)
            job.check("opening the document")
            self.library.touch(handle.sha256, path)  # a library hit is a fresh open for "recent"
            self.sig_document.emit(path, handle)
            self._emit_history(handle.sha256)
            # Nothing is read here: a question reads the parts of the document it needs (engine/api.py).
        self._run("open", work, job)

    @Slot(object, object, str)
    def _ask(self, job: Job, handle, question: str) -> None:
        def work() -> None:
            job.check("answering")
            engine = self._load(job)
            self.sig_busy.emit("Answering")
            answer = engine.ask(handle, question, on_text=lambda piece: self.sig_text.emit(job.id, piece),
                                should_stop=job.should_stop, progress=self.sig_progress.emit)
            self.sig_answer.emit(job.id, answer)
            self._emit_storage()
        self._run("ask", work, job)

    def _emit_history(self, sha256: str) -> None:
        self.sig_history.emit(sha256, list(self._engine().history(sha256)))

    @Slot(str)
    def _history(self, sha256: str) -> None:
        self._run("history", lambda: self._emit_history(sha256))

    @Slot(str)
    def _clear_history(self, sha256: str) -> None:
        self._run("history", lambda: self._engine().clear_history(sha256))

    @Slot(int)
    def _recent(self, limit: int) -> None:
        self._run("library", lambda: self.sig_recent.emit(self.library.recent(limit)))

    @Slot(str, int)
    def _last_page(self, sha256: str, page: int) -> None:
        self._run("library", lambda: self.library.set_last_page(sha256, page))

    @Slot()
    def _clear_cache(self) -> None:
        def work() -> None:
            self._engine().state_cache.clear()  # every stored document state; the in-memory one stays usable
            self.sig_cache_cleared.emit()
            self._emit_storage()
        self._run("cache", work)

    @Slot()
    def _storage(self) -> None:
        self._run("cache", self._emit_storage)

    def _emit_storage(self) -> None:
        """The storage figures, for Settings and the library panel: never worth failing a job for."""
        try:
            self.sig_storage.emit(self._engine().storage())
        except Exception:  # noqa: BLE001 - a figure that cannot be read is shown as unknown
            traceback.print_exc(file=sys.stderr)
