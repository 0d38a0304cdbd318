"""The library's jobs on the engine: add, remove, list, read one queued document, answer from the whole library.

``LibraryWorker`` is a QObject that lives in the engine worker's thread (``EngineWorker``'s ``WorkerThread``)
and uses that worker's engine: the two share one event loop, so a library job and a question never run on the
engine at the same time (the engine is not thread-safe). Reading is one queued document per ``req_read`` job,
so requests sent meanwhile (a question, opening a document) run between two documents; the GUI also stops the
running reading (``Job.stop``) when the user wants the engine, and the document goes back to the queue.

Requests (GUI thread): ``req_start()`` (queue again the changed files, then list), ``req_add(paths)``,
``req_remove(item_id)``, ``req_list()``, ``req_read(job)``, ``req_ask(job, question)``.

Signals to the GUI:
- ``sig_documents(items)``: the library's documents (``Engine.library_documents()`` dicts).
- ``sig_reading(item_id, done, total)``: progress of the document being read (tokens).
- ``sig_read_done(job_id, more, failed)``: a ``req_read`` job ended (read, failed, stopped or nothing
  queued); ``more``: documents are still queued; ``failed``: the job itself failed (reported by ``sig_error``;
  a document that cannot be read is not a failed job, it is marked "failed" in the list).
- ``sig_added(count)``: documents added (0: none of the paths held a document DocFocus reads).
- ``sig_error(kind, message)``: a library job failed (kind "library"; a question's errors go through the
  engine worker's ``sig_error`` with its job id, like a document question's).
A question's text, answer and cancellation go through the engine worker's ``sig_text``, ``sig_answer`` and
``sig_cancelled``, so the window shows them as it shows any answer.
"""
from __future__ import annotations

import sys
import time
import traceback

from PySide6.QtCore import QObject, Signal, Slot

from engine.errors import CancelledError, DocFocusError

from .pdf_worker import PDF_LOCK

READING_STAGE = "Reading the document"
PROGRESS_EVERY_S = 0.2  # at most this often a reading's progress goes to the GUI


class LibraryWorker(QObject):
    sig_documents = Signal(object)
    sig_reading = Signal(int, int, int)
    sig_read_done = Signal(int, bool, bool)
    sig_added = Signal(int)
    sig_error = Signal(str, str)

    req_start = Signal()
    req_add = Signal(object)  # list of paths (files or folders)
    req_remove = Signal(int)
    req_list = Signal()
    req_read = Signal(object)  # Job
    req_ask = Signal(object, str)  # Job, question

    def __init__(self, engine_worker) -> None:
        super().__init__()
        self.engine_worker = engine_worker
        self._whole: dict[int, int] = {}  # item id -> the most tokens a reading of it counted (its length)
        for request, slot in [(self.req_start, self._start), (self.req_add, self._add),
                              (self.req_remove, self._remove), (self.req_list, self._list),
                              (self.req_read, self._read), (self.req_ask, self._ask)]:
            request.connect(slot)

    def _engine(self):
        return self.engine_worker._engine()  # same thread: the engine worker's engine, built on first use

    def _guard(self, work) -> bool:
        """Run ``work``; a failure becomes a banner, never a crash. False when it failed."""
        try:
            work()
        except CancelledError:
            pass  # stopped at the user's request (the model's loading, for one)
        except DocFocusError as error:
            self.sig_error.emit("library", error.user_message())
            return False
        except Exception as error:  # noqa: BLE001 - a worker must report, never die
            traceback.print_exc(file=sys.stderr)
            self.sig_error.emit("library", f"{type(error).__name__}: {error}")
            return False
        return True

    def _emit_documents(self) -> None:
        self.sig_documents.emit(self._engine().library_documents())

    @Slot()
    def _start(self) -> None:
        def work() -> None:
            self._engine().library_refresh()  # a file changed since the last run is read again
            self._emit_documents()
        self._guard(work)

    @Slot(object)
    def _add(self, paths: list) -> None:
        def work() -> None:
            try:
                ids = self._engine().library_add([str(p) for p in paths])
                for number in ids:  # a changed file is counted afresh
                    self._whole.pop(number, None)
            finally:
                self._emit_documents()
            self.sig_added.emit(len(ids))
        self._guard(work)

    @Slot(int)
    def _remove(self, item_id: int) -> None:
        def work() -> None:
            try:
                self._engine().library_remove(item_id)
            finally:
                self._emit_documents()
        self._guard(work)

    @Slot()
    def _list(self) -> None:
        self._guard(self._emit_documents)

    @Slot(object)
    def _read(self, job) -> None:
        more = [False]
        self.engine_worker.sig_started.emit(job.id, "library")  # a question asked now waits for it to pause

        def work() -> None:
            engine = self._engine()
            if job.should_stop() or engine.library_queue.next() is None:
                more[0] = engine.library_queue.next() is not None
                return
            self.engine_worker._load(job)  # the model (once), with the status bar's progress
            item = engine.library_queue.next()
            self.sig_documents.emit([self._as_reading(d) if d["id"] == item["id"] else d
                                     for d in engine.library_documents()])
            if not self._parse(engine, item, job):
                self._emit_documents()
                more[0] = engine.library_queue.next() is not None
                return
            last = [0.0]
            number = int(item["id"])

            def progress(stage: str, done: int, total: int) -> None:
                now = time.monotonic()
                if stage == READING_STAGE and (now - last[0] >= PROGRESS_EVERY_S or done >= total):
                    last[0] = now
                    # a reading stopped before resumes where it was: the engine then counts only what is left
                    whole = self._whole[number] = max(self._whole.get(number, 0), int(total))
                    self.sig_reading.emit(number, int(done) + whole - int(total), whole)
            try:
                engine.library_read_next(progress, job.should_stop)
                self._whole.pop(number, None)
            except CancelledError:
                pass  # back in the queue; the segments read so far are kept
            self._emit_documents()
            more[0] = engine.library_queue.next() is not None  # not after an error: no loop of failures
        ok = False
        try:
            ok = self._guard(work)
        finally:
            self.engine_worker.sig_busy.emit("")
            self.sig_read_done.emit(job.id, more[0], not ok)

    def _as_reading(self, item: dict) -> dict:
        """The queue's entry as being read, its progress counted over the whole document."""
        whole, total = self._whole.get(int(item["id"]), 0), int(item.get("total") or 0)
        done = int(item.get("done") or 0) + (whole - total if 0 < total <= whole else 0)
        return dict(item, state="reading", done=done, total=max(whole, total))

    def _parse(self, engine, item: dict, job) -> bool:
        """Parse the file under the viewer's PyMuPDF lock (PyMuPDF is not thread-safe); the reading then takes
        the library's copy. A file that cannot be parsed fails here, with the reason the engine would give."""
        try:
            engine.ingest(item["path"], should_stop=job.should_stop, pdf_lock=PDF_LOCK)
        except CancelledError:
            raise
        except DocFocusError as error:
            engine.library_queue.set_state(item["id"], "failed", reason=error.user_message())
            return False
        except Exception as error:  # noqa: BLE001 - one bad file never stops the queue
            engine.library_queue.set_state(item["id"], "failed", reason=f"{type(error).__name__}: {error}")
            return False
        return True

    @Slot(object, str)
    def _ask(self, job, question: str) -> None:
        worker = self.engine_worker

        def work() -> None:
            job.check("answering")
            engine = worker._load(job)
            worker.sig_busy.emit("Answering from the library")
            answer = engine.ask_library(question, on_text=lambda piece: worker.sig_text.emit(job.id, piece),
                                        should_stop=job.should_stop, progress=worker.sig_progress.emit)
            worker.sig_answer.emit(job.id, answer)
        worker._run("ask", work, job)
