"""DocFocus's main window: reader on the left, chat on the right, engine and PDF in worker threads.

``MainWindow(settings=None)`` builds the window without loading any model; the model loads (in the
engine thread, with a progress bar) when a document is opened or a question is asked. The window is
view + controller: it sends requests to the workers as queued signals and shows what their signals
report; it reads no worker state.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine.ingest.formats import OPEN_FILTER, SUFFIXES
from engine.store.history import damaged_notice

from .answer_card import answer_entry, entry_highlights
from .chat_pane import ChatPane
from .engine_worker import EngineWorker, Job
from .library_controller import LibraryController
from .looked_strip import LookedStrip, page_shares
from .pdf_view import PdfView
from .pdf_worker import WorkerThread
from .progress import ProgressStatus
from .settings import default_qsettings, load_engine_settings
from .start_screen import StartScreen
from .waiting import WaitingWords
from .widgets import BannerArea, FindBar, SidePanel
from .window_actions import build_actions, fill_recent, show_document_controls
from .window_parts import WindowParts
from .wording import cancelled_reading, document_banners
from .zoom_memory import ZoomMemory

APP_NAME = "DocFocus"
RECENT_LIMIT = 10
SAVE_PAGE_DELAY_MS = 800
NO_DOCUMENT = ("Open a document first (Ctrl+O, a recent document, or drop one on the window); your question "
               "stays here.")


class MainWindow(WindowParts, QMainWindow):
    """The DocFocus window.

    Signals (GUI thread, after the window has shown the result): ``sig_document_ready(handle)``,
    ``sig_answer_shown(entry)``, ``sig_error_shown(kind, message)``.

    ``settings``: a QSettings to persist to (default: the user's DocFocus settings).
    ``engine``: an already built ``engine.api.Engine`` (tests); otherwise one is built from the saved
    settings on first use. ``auto_prepare``: read a document (load the model, prefill) as soon as it
    opens rather than at the first question.
    """

    sig_document_ready = Signal(object)
    sig_answer_shown = Signal(object)
    sig_error_shown = Signal(str, str)

    def __init__(self, settings: QSettings | None = None, engine=None, auto_prepare: bool = True) -> None:
        super().__init__()
        self.store = settings if settings is not None else default_qsettings()
        self.engine_settings = engine.settings if engine is not None else load_engine_settings(self.store)
        self.auto_prepare = auto_prepare
        self.path: str | None = None
        self.password: str | None = None  # of the open PDF, when it is encrypted (kept in memory only)
        self.sha256: str | None = None
        self.handle = None  # engine DocumentHandle of the open document, once read
        self.model_info: dict | None = None
        self._open_job: Job | None = None  # reading the open document
        self._ask_job: Job | None = None  # the answer being generated (or waiting for the reading)
        self._pending_question: str | None = None  # asked before the document was read
        self._restore_page: int | None = None
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self._build_layout()
        self.status_progress = ProgressStatus()
        self.statusBar().addWidget(self.status_progress, 1)
        self.model_label, self.device_label, self.attention_label = QLabel(), QLabel(), QLabel()
        for label in (self.model_label, self.device_label, self.attention_label):
            self.statusBar().addPermanentWidget(label)
        build_actions(self)
        self.zoom_memory = ZoomMemory(self.store, self.view)
        self.worker = EngineWorker(self.engine_settings, engine=engine)
        self.engine_thread = WorkerThread(self.worker, "docfocus-engine")
        self.engine_thread.start()
        self._connect()
        self.waiting = WaitingWords(self.worker, self.chat, self.status_progress, self)  # a waiting card's words
        self.library = LibraryController(self)  # the Library tab, reading in the background, library questions
        self.worker.req_storage.emit()  # the space stored readings take, for the library panel and Settings
        self._save_page_timer = QTimer(self, singleShot=True, interval=SAVE_PAGE_DELAY_MS)
        self._save_page_timer.timeout.connect(self._save_page)
        self.set_theme(str(self.store.value("view/theme", "system")))
        self._show_document_controls(False)
        self._update_status_labels()
        self.request_recent()

    # The status bar's parts, by the names tests and scripts use.
    activity = property(lambda self: self.status_progress.activity)
    progress = property(lambda self: self.status_progress.bar)
    eta = property(lambda self: self.status_progress.eta)
    cancel_button = property(lambda self: self.status_progress.cancel_button)

    def _build_layout(self) -> None:
        self.view, self.chat, self.side = PdfView(), ChatPane(), SidePanel()
        self.looked = LookedStrip(self.view)  # where the selected answer's passages lie, beside the scrollbar
        self.banners, self.find_bar, self.start_screen = BannerArea(), FindBar(), StartScreen()
        self.find_bar.hide()
        self.reader = QStackedWidget()
        self.reader.addWidget(self.start_screen)
        self.reader.addWidget(self.view)
        column_widget = QWidget()
        column = QVBoxLayout(column_widget)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        for widget, stretch in ((self.banners, 0), (self.find_bar, 0), (self.reader, 1)):
            column.addWidget(widget, stretch)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for widget, stretch in ((self.side, 0), (column_widget, 3), (self.chat, 2)):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(self.splitter.count() - 1, stretch)
        self.splitter.setSizes([170, 760, 470])
        self.setCentralWidget(self.splitter)

    def _connect(self) -> None:
        view, chat, worker = self.view, self.chat, self.worker
        view.sig_opened.connect(self._on_pdf_opened)
        view.sig_failed.connect(lambda message: self.show_error("pdf", message))
        view.worker.sig_needs_password.connect(self._ask_password)
        view.sig_page_changed.connect(self._on_page_changed)
        view.sig_zoom_changed.connect(self._on_zoom_changed)
        view.sig_find_done.connect(lambda count: self.find_bar.set_count(count, self.view.find_index))
        view.sig_thumbnail.connect(self.side.set_thumbnail)
        self.side.sig_go.connect(view.go_to_page)
        self.looked.sig_go.connect(view.go_to_page)
        self.find_bar.sig_find.connect(view.find)
        self.find_bar.sig_next.connect(self.find_next)
        self.find_bar.sig_closed.connect(view.clear_find)
        self.start_screen.sig_open.connect(self.choose_file)
        self.start_screen.sig_open_path.connect(self.open_pdf)
        self.status_progress.sig_cancel.connect(self.cancel)
        chat.sig_ask.connect(self.ask)
        chat.sig_stop.connect(self.stop)
        chat.sig_clear.connect(self._forget_history)
        chat.sig_passage.connect(self.show_passage)
        chat.sig_selected.connect(self.show_answer_highlights)
        worker.sig_busy.connect(self.status_progress.set_busy)
        worker.sig_progress.connect(self.status_progress.set_progress)
        worker.sig_model.connect(self._on_model)
        worker.sig_recognised_words.connect(self._on_recognised_words)
        worker.sig_document.connect(self._on_document)
        worker.sig_document_row.connect(self._on_document_row)
        worker.sig_history.connect(self._on_history)
        worker.sig_text.connect(chat.append_text)
        worker.sig_answer.connect(self._on_answer)
        worker.sig_cancelled.connect(self._on_cancelled)
        worker.sig_error.connect(self._on_worker_error)  # bound methods: a lambda would run in the worker's thread
        worker.sig_recent.connect(self._fill_recent)
        worker.sig_cache_cleared.connect(self._on_cache_cleared)
        worker.sig_storage.connect(self._on_storage)

    # --- documents --------------------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self.path).parent) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a document", start, OPEN_FILTER)
        if path:
            self.open_pdf(path)

    def open_pdf(self, path: str | Path, page: int | None = None) -> None:
        """Show ``path`` in the reader now; the engine reads it in the background."""
        path = str(Path(path).expanduser().resolve())
        self._save_page()
        self.chat.commit_clear()  # a pending Clear chat belongs to the document being left
        if not self.library.scoped:  # a library chat stays (a citation opens its document)
            self.stop()
            self.chat.clear()
        if self._open_job is not None:
            self._open_job.stop.set()
        self.path, self.sha256, self.handle, self.password = path, None, None, None
        self._open_job, self._restore_page = None, page
        self.zoom_memory.new_document()
        self.banners.clear()
        self.show_answer_highlights({})  # the old document's answer: no highlights, no marks
        self.reader.setCurrentWidget(self.view)
        self.view.open(path, page or 0)
        self.worker.req_lookup.emit(path)
        self.status_progress.set_message(f"Opening {Path(path).name}")

    def _ask_password(self, path: str, wrong: bool) -> None:
        if path != self.path:
            return
        prompt = ("Wrong password. " if wrong else "") + f"{Path(path).name} is encrypted. Password:"
        password, ok = QInputDialog.getText(self, "Password", prompt, QLineEdit.EchoMode.Password)
        if ok and password:
            self.password = password
            self.view.open(path, self._restore_page or 0, password)
        else:
            self.show_error("pdf", f"{Path(path).name} is encrypted; it stays closed without its password.")

    def _on_pdf_opened(self, info) -> None:
        self.setWindowTitle(f"{APP_NAME} — {info.title}")
        self._show_document_controls(True, len(info.page_sizes))
        self.side.set_document(info.outline, len(info.page_sizes))
        self.side.set_looked(self.looked.shares)  # an answer selected before the pages were known
        self.side.follow_page(self.view.current_page())  # the view may already be at the page left last time
        self.chat.set_document_open(True, info.title)
        self.status_progress.set_message("Ready")
        self.zoom_memory.restore(self.sha256)
        if self.auto_prepare:
            self.prepare()  # a scan is read too: the engine recognises its pages (OCR) with progress and Cancel

    def _show_document_controls(self, shown: bool, pages: int = 0) -> None:
        show_document_controls(self, shown, pages)

    def prepare(self) -> None:
        """Load the model, open and read the current document in the engine thread."""
        if self.path and self._open_job is None:
            self._open_job = Job("open")
            self.worker.req_configure.emit(self.engine_settings)
            self.worker.req_prepare.emit(self._open_job, self.path, self.password)

    def _on_document_row(self, path: str, sha256: str, last_page: int) -> None:
        if path != self.path:
            return
        self.sha256 = sha256
        if self._restore_page is None and last_page > 0:
            self.view.go_to_page(last_page)  # reopen where the user left off
        self.zoom_memory.restore(self.sha256)

    def _on_recognised_words(self, path: str, pages: dict) -> None:
        if path == self.path and pages:
            self.view.set_recognised_words(pages)  # a scan's find, selection and copy use the OCR words

    def _on_document(self, path: str, handle) -> None:
        if path != self.path:
            return
        self.handle, self.sha256 = handle, handle.sha256
        for key, kind, text, detail in document_banners(handle):
            self.banners.show_banner(key, kind, text).setToolTip(detail)
        if self._pending_question is not None and self._ask_job is not None:
            question, self._pending_question = self._pending_question, None
            self.worker.req_ask.emit(self._ask_job, handle, question)
        self.request_recent()
        self.sig_document_ready.emit(handle)

    def _on_history(self, sha256: str, entries: list) -> None:
        if sha256 != self.sha256 or self.chat.cards or self.library.scoped:
            return
        last = None
        for entry in entries:
            last = self.chat.add_entry(dict(entry))
        if last is not None:
            self.chat.select(last)
        damaged = damaged_notice(entries)
        if damaged:
            self.banners.show_banner("notice", "info", damaged)

    def _on_page_changed(self, page: int) -> None:
        self.page_box.blockSignals(True)
        self.page_box.setValue(page + 1)
        self.page_box.blockSignals(False)
        self.side.follow_page(page)
        self._save_page_timer.start()

    def _save_page(self) -> None:
        if self.sha256 and self.view.pages:
            self.worker.req_last_page.emit(self.sha256, self.view.current_page())

    def _on_zoom_changed(self, zoom: float, fit_mode: str) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")
        self.zoom_memory.changed(self.sha256, zoom, fit_mode)

    def request_recent(self) -> None:
        self.worker.req_recent.emit(RECENT_LIMIT)

    def _fill_recent(self, rows: list) -> None:
        fill_recent(self, rows)

    # --- asking --------------------------------------------------------------------------------------
    def ask(self, question: str) -> None:
        if self.library.scoped:
            self.library.ask(question)
            return
        if not self.path:
            self.show_error("ask", NO_DOCUMENT)
            return
        self._ask_job = Job("ask")
        self.chat.start_answer(question, self._ask_job.id)
        if self.handle is None:
            self._pending_question = question
            self.prepare()
            return
        self.worker.req_ask.emit(self._ask_job, self.handle, question)

    def stop(self) -> None:
        """Stop the answer: its job stops at the engine's next check; the chat says so at once."""
        self._pending_question = None
        if self._ask_job is not None:
            self._ask_job.stop.set()
            self._ask_job = None
            self.chat.stop_answer()

    def cancel(self) -> None:
        """The status bar's Cancel: stop loading the model, reading the document, or the answer's own work."""
        if self._open_job is not None:
            self._open_job.stop.set()
        self.stop()  # a question waiting for the reading, or one loading the model or finding passages
        self.status_progress.set_message("Cancelling…")
        self.chat.question.setFocus()

    def _on_answer(self, job_id: int, answer) -> None:
        entry = answer_entry(answer)
        card = self.chat.finish_answer(job_id, entry)
        if self._ask_job is not None and self._ask_job.id == job_id:
            self._ask_job = None
        # show where the answer comes from: its first citation, or the sentence quoted beside an unsupported one
        first = entry["quote"] if not entry["supported"] and entry.get("quote") else \
            (entry["citations"] or [None])[0]
        if card is not None and first and entry["finish"] != "stopped" and not entry["stopped"]:
            self.show_passage(int(first["page"]) - 1, list(first.get("boxes") or []),
                              first.get("document") if entry["library"] else None)
        own = self.handle.notice() if self.handle is not None else None
        notice = " ".join(n for n in answer.notices if n != own)  # the document banner already says its own
        if notice:
            self.banners.show_banner("notice", "info", notice)
        self.sig_answer_shown.emit(entry)

    def _on_cancelled(self, job_id: int, kind: str) -> None:
        if kind == "ask":
            self.chat.fail_answer(job_id, "Stopped before the answer began.")
        elif self._open_job is not None and self._open_job.id == job_id:
            self._open_job = None  # the next question reads the document again
            self.banners.remove("window")  # how the document was read ("reading": OCR) stays true
            self.status_progress.set_message(cancelled_reading(*self.status_progress.last_progress))
            if self._ask_job is not None and self._pending_question is not None:
                self.chat.fail_answer(self._ask_job.id, "Cancelled: the document was not read.")
                self._ask_job, self._pending_question = None, None
        self.chat.question.setFocus()

    def _forget_history(self) -> None:
        """A Clear chat that was not undone: delete the saved chat of the current document."""
        if self.sha256 and not self.library.scoped:  # the library's chat is not saved
            self.worker.req_clear_history.emit(self.sha256)

    def show_answer_highlights(self, entry: dict) -> None:
        """Draw exactly the selected answer's highlights (the engine made them), and mark the pages its passages
        lie on (beside the scrollbar and on the thumbnails); ``{}``: no answer selected."""
        self.view.set_highlights(entry_highlights(entry, self.sha256))
        shares = page_shares(entry, self.sha256)
        self.looked.set_shares(shares)
        self.side.set_looked(shares)

    def show_passage(self, page: int, boxes: list, document: dict | None = None) -> None:
        """Go to a passage (0-based page) and flash it; one of another library document opens that document."""
        self.library.show_passage(page, boxes, document)

    # --- status, errors -----------------------------------------------------------------------------
    def _on_worker_error(self, job_id: int, kind: str, message: str) -> None:
        self.show_error(kind, message, job_id)
    def show_error(self, kind: str, message: str, job_id: int = 0) -> None:
        """A worker's failure as a banner (never a crash); the window stays usable."""
        if kind == "ask":
            self.chat.fail_answer(job_id, message)
            if self._ask_job is not None and self._ask_job.id == job_id:
                self._ask_job = None
        if kind == "open":
            self._open_job = None
            if self._pending_question is not None and self._ask_job is not None:
                self.chat.fail_answer(self._ask_job.id, message)
                self._ask_job, self._pending_question = None, None
        self.banners.show_banner("error", "error", message)
        if self.path:
            self.status_progress.set_message("Error")
        self.sig_error_shown.emit(kind, message)

    # --- window events ------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if _dropped_document(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = _dropped_document(event)
        if path:
            self.open_pdf(path)
            event.acceptProposedAction()

    def closeEvent(self, event) -> None:
        self._save_page()
        self.chat.commit_clear()
        for job in (self._open_job, self._ask_job):
            if job is not None:
                job.stop.set()
        self.library.shutdown()
        self.view.shutdown()
        self.engine_thread.shutdown(30_000)
        super().closeEvent(event)


def _dropped_document(event) -> str | None:
    """The first dropped local file of a kind DocFocus reads (engine/ingest/formats.py), else None."""
    return next((url.toLocalFile() for url in event.mimeData().urls()
                 if Path(url.toLocalFile()).suffix.lower() in SUFFIXES), None)
