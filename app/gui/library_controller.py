"""The library in the window: its panel, background reading, questions to the whole library, citations.

``LibraryController(window)`` adds a "Library" tab to the window's side panel and a ``LibraryWorker`` to the
engine worker's thread (app/gui/library_worker.py). It

- lists the library (after queueing again the files that changed since the last run) and reads the queued
  documents in the background, one document per worker job, resuming the queue left by an earlier run;
- stops the running reading whenever the window asks the engine for something (a question, opening a
  document, a chat history): the document goes back to the queue, the request runs next, and reading goes
  on after it (the reading's next job is queued behind the request);
- answers questions in the chat's "Whole library" scope (``ask``), keeping the library's chat apart from
  the documents' saved chats;
- routes a click on a passage (``show_passage``): a passage of the open document flashes there; one of
  another document opens that document at its page, then flashes and draws the answer's highlights there.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel

from .engine_worker import Job
from .library_panel import LibraryPanel
from .library_worker import LibraryWorker

NOTHING_READY = ("No document of the library is ready yet. Add documents in the Library tab (left); "
                 "DocFocus reads them in the background, then answers from all of them.")
LIBRARY_WIDTH = 400  # pixels of the side panel while it shows the library
NOTHING_ADDED = "Nothing was added: no document DocFocus can read was found there."


class LibraryController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel = LibraryPanel()
        window.side.addTab(self.panel, "Library")
        window.side.setTabToolTip(window.side.count() - 1, "Documents to ask questions across")
        self.worker = LibraryWorker(window.worker)
        self.worker.moveToThread(window.engine_thread)
        self.documents: list[dict] = []
        self.reading: Job | None = None  # the running (or requested) reading job
        self.library_entries: list[dict] = []  # the library's chat while the chat shows a document's
        self._pending: tuple[str, int, list] | None = None  # (path, page, boxes) to flash once that PDF opens
        self.closed = False
        self.status = QLabel("")  # "Library: reading R-intro (3%), 2 waiting" while the library reads
        self.status.setToolTip("Documents of the library are read in the background, one at a time (Library tab)")
        window.statusBar().insertPermanentWidget(0, self.status)
        self._connect()
        self._add_menu_items()
        self.worker.req_start.emit()
        self.start_reading()

    @property
    def scoped(self) -> bool:
        """The chat asks the whole library."""
        return self.window.chat.scope == "library"

    def _connect(self) -> None:
        panel, worker, window = self.panel, self.worker, self.window
        panel.sig_add.connect(self.add)
        panel.sig_remove.connect(self.remove)
        panel.sig_open.connect(window.open_pdf)
        worker.sig_documents.connect(self._on_documents)
        worker.sig_reading.connect(panel.show_reading)
        worker.sig_reading.connect(self._show_status)
        worker.sig_read_done.connect(self._on_read_done)
        worker.sig_added.connect(self._on_added)
        worker.sig_error.connect(self._on_error)
        engine = window.worker  # the window's own requests to the engine come first: pause the reading
        for request in (engine.req_lookup, engine.req_prepare, engine.req_ask, engine.req_history,
                        engine.req_clear_cache, engine.req_configure):
            request.connect(self.pause)
        window.chat.sig_scope.connect(self.set_scope)
        window.view.sig_opened.connect(self._on_pdf_opened)
        window.side.currentChanged.connect(self._on_tab)

    def _on_tab(self, index: int) -> None:
        """The library's four columns need more room than the outline: widen the side panel for them."""
        splitter = self.window.splitter
        sizes = splitter.sizes()
        if self.window.side.widget(index) is self.panel and sizes[0] < LIBRARY_WIDTH:
            grow = LIBRARY_WIDTH - sizes[0]
            splitter.setSizes([LIBRARY_WIDTH, max(200, sizes[1] - grow), sizes[2]])

    def _add_menu_items(self) -> None:
        """File > Add files to the library… / Add a folder to the library…, after Open recent."""
        recent = self.window.recent_menu.menuAction()
        file_menu = recent.associatedObjects()[0]
        actions = file_menu.actions()
        after = actions[actions.index(recent) + 1]
        self.add_files_action = QAction("Add files to the library…", self.window)
        self.add_files_action.triggered.connect(self.panel.choose_files)
        self.add_folder_action = QAction("Add a folder to the library…", self.window)
        self.add_folder_action.triggered.connect(self.panel.choose_folder)
        file_menu.insertActions(after, [self.add_files_action, self.add_folder_action])

    # --- the library ---------------------------------------------------------------------------------
    def add(self, paths: list) -> None:
        self.pause()  # the list changes now, not after the document being read
        self.worker.req_add.emit([str(p) for p in paths])

    def remove(self, item_id: int) -> None:
        self.pause()
        self.worker.req_remove.emit(int(item_id))

    def _on_documents(self, documents: list) -> None:
        self.documents = list(documents)
        self.panel.show_documents(self.documents)
        self._show_status()

    def _show_status(self, *_progress) -> None:
        """The status bar's word on the library's reading, from what the panel shows."""
        documents = self.panel.documents.values()
        reading = [d for d in documents if d.get("state") == "reading"]
        waiting = sum(d.get("state") == "queued" for d in documents)
        parts = []
        if reading:
            done, total = int(reading[0].get("done") or 0), int(reading[0].get("total") or 0)
            title = reading[0].get("title") or Path(reading[0]["path"]).stem
            parts.append(f"reading {title}" + (f" ({100 * done // total}%)" if total else ""))
        if waiting:
            parts.append(f"{waiting} waiting")
        self.status.setText(f"Library: {', '.join(parts)}" if parts else "")
        self.status.setVisible(bool(parts))

    def _on_added(self, count: int) -> None:
        if count == 0:
            self.window.banners.show_banner("library", "info", NOTHING_ADDED)
        self.start_reading()

    def _on_error(self, kind: str, message: str) -> None:
        """A library job failed: a banner of its own (the status bar and the chat belong to the document)."""
        self.window.banners.show_banner("library", "error", message)
        self.window.sig_error_shown.emit(kind, message)

    # --- reading in the background ---------------------------------------------------------------
    def start_reading(self) -> None:
        """Read the next queued document (one per job), unless a reading is on its way already."""
        if self.reading is None and not self.closed:
            self.reading = Job("library")
            self.worker.req_read.emit(self.reading)

    def shutdown(self) -> None:
        """The window closes: stop the reading (the document stays queued for the next run), start no other."""
        self.closed = True
        self.pause()

    def pause(self, *_args) -> None:
        """The window wants the engine: stop the reading now (it resumes after the window's request)."""
        if self.reading is not None:
            self.reading.stop.set()

    def _on_read_done(self, job_id: int, more: bool, failed: bool) -> None:
        if self.reading is None or self.reading.id != job_id:
            return
        stopped = self.reading.should_stop()
        self.reading = None
        if more or (stopped and not failed):  # (a failed job waits for the next add: no loop of errors)
            self.start_reading()  # queued behind whatever request stopped this one

    # --- questions to the whole library --------------------------------------------------------------
    def ask(self, question: str) -> None:
        window = self.window
        window._ask_job = job = Job("ask")
        window.chat.start_answer(question, job.id)
        if not any(d.get("state") == "ready" for d in self.documents):
            window.chat.fail_answer(job.id, NOTHING_READY)
            window._ask_job = None
            return
        self.pause()
        self.worker.req_ask.emit(job, question)

    def set_scope(self, scope: str) -> None:
        """The chat's scope changed: the running answer stops, the chat shows that scope's questions."""
        window, chat = self.window, self.window.chat
        window.stop()
        chat.commit_clear()
        window.show_answer_highlights({})  # the other scope's answer's; the selected answer draws its own
        if scope == "library":
            chat.clear()
            last = None
            for entry in self.library_entries:
                last = chat.add_entry(entry)
            chat.select(last)
        else:
            self.library_entries = [card.entry for card in chat.cards if card.finished]
            chat.clear()
            if window.sha256:
                window.worker.req_history.emit(window.sha256)  # the document's saved chat comes back

    # --- passages ---------------------------------------------------------------------------------------
    def show_passage(self, page: int, boxes: list, document: dict | None = None) -> None:
        """Go to a cited passage (0-based page): in the open document, or in the document it names."""
        window = self.window
        path = (document or {}).get("path")
        same = not document or document.get("sha256") == window.sha256 or (
            path and window.path and Path(path).resolve() == Path(window.path).resolve())
        if same:
            window.view.flash(page, boxes)
            return
        if not path or not Path(path).is_file():
            self._on_error("library", f"{path or 'The document'} is no longer there: it cannot be shown.")
            return
        self._pending = (str(Path(path).resolve()), page, boxes)
        window.open_pdf(path, page)
        window.sha256 = document.get("sha256")  # the highlights name it; the library lookup says the same

    def _on_pdf_opened(self, _info) -> None:
        window = self.window
        if self.scoped and window.chat.selected is not None:
            window.show_answer_highlights(window.chat.selected.entry)
        pending, self._pending = self._pending, None
        if pending is not None and pending[0] == window.path:
            window.view.flash(pending[1], pending[2])
