"""DocFocus's main window: reader on the left, chat on the right, engine in a worker thread.

``MainWindow(settings=None)`` builds the window without loading any model; the
model loads (in the engine thread, with a progress bar) when a document is
opened or a question is asked.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QInputDialog, QLabel, QLineEdit, QMainWindow, QProgressBar,
                               QPushButton, QSpinBox, QSplitter, QToolBar, QVBoxLayout, QWidget)

from .chat_pane import ChatPane
from .engine_worker import EngineThread, EngineWorker
from .pdf_view import PdfView
from .relevance import answer_highlights
from .settings import SettingsDialog, default_qsettings, load_engine_settings, save_engine_settings
from .widgets import BannerArea, FindBar, RelevanceLegend, SidePanel

APP_NAME = "DocFocus"
RECENT_LIMIT = 10
SAVE_PAGE_DELAY_MS = 800


def can_clear_cache(engine=None) -> bool:
    """Whether the engine (or, before one exists, the Engine class) has a state cache to clear."""
    if engine is None:
        from engine.api import Engine as engine  # noqa: N813 - the class stands in for an instance
    return hasattr(engine, "clear_cache") or hasattr(engine, "state_cache")


def answer_entry(answer) -> dict:
    """An ``engine.api.Answer`` as the dict the chat pane and history use."""
    return {"question": answer.question, "answer": answer.answer,
            "evidence": [e if isinstance(e, dict) else {"page": e.page, "text": e.text, "score": e.score,
                                                       "boxes": e.boxes} for e in answer.evidence],
            "token_scores": answer.token_scores, "attention": dict(answer.attention or {}),
            "timings": dict(answer.timings or {}), "stopped": answer.stopped, "model": dict(answer.model or {})}


class MainWindow(QMainWindow):
    """The DocFocus window.

    Signals (GUI thread, after the window has shown the result): ``sig_document_ready(handle)``,
    ``sig_answer_shown(entry)``, ``sig_error_shown(job, message)``.

    ``settings``: a QSettings to persist to (default: the user's DocFocus settings).
    ``engine``: an already built ``engine.api.Engine`` (tests); otherwise one is built
    from the saved settings on first use. ``auto_prepare``: read a document (load the
    model, prefill) as soon as it opens rather than at the first question.
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
        self._pending_question: str | None = None
        self._prepare_requested = False
        self._restore_page: int | None = None
        self._progress_stage = ""
        self._progress_started = 0.0
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        self.view = PdfView()
        self.chat = ChatPane()
        self.side = SidePanel()
        self.banners = BannerArea()
        self.find_bar = FindBar()
        self.find_bar.hide()
        reader = QWidget()
        column = QVBoxLayout(reader)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banners)
        column.addWidget(self.find_bar)
        column.addWidget(self.view, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.side)
        self.splitter.addWidget(reader)
        self.splitter.addWidget(self.chat)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 2)
        self.splitter.setSizes([170, 760, 470])
        self.setCentralWidget(self.splitter)

        self._build_status_bar()
        self._build_actions()
        self._build_worker(engine)
        self._connect()
        self._save_page_timer = QTimer(self, singleShot=True, interval=SAVE_PAGE_DELAY_MS)
        self._save_page_timer.timeout.connect(self._save_page)
        self._update_status_labels()
        self.request_recent()

    # --- construction ---------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.activity = QLabel("Ready")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(200)
        self.progress.setTextVisible(True)
        self.eta = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.model_label = QLabel()
        self.device_label = QLabel()
        self.attention_label = QLabel()
        bar.addWidget(self.activity, 1)
        bar.addWidget(self.progress)
        bar.addWidget(self.eta)
        bar.addWidget(self.cancel_button)
        for label in (self.model_label, self.device_label, self.attention_label):
            bar.addPermanentWidget(label)
        self._show_progress(False)

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.setToolTip(tip or text)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        keys = QKeySequence.StandardKey
        self.open_action = self._action("Open…", self.choose_file, keys.Open, "Open a PDF (Ctrl+O)")
        self.zoom_in_action = self._action("Zoom in", self.view.zoom_in,
                                           [QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
        self.zoom_out_action = self._action("Zoom out", self.view.zoom_out, QKeySequence("Ctrl+-"))
        self.fit_width_action = self._action("Fit width", self.view.fit_width, QKeySequence("Ctrl+2"))
        self.fit_page_action = self._action("Fit page", self.view.fit_page, QKeySequence("Ctrl+1"))
        self.find_action = self._action("Find…", self.show_find, keys.Find, "Find in the document (Ctrl+F)")
        self.find_next_action = self._action("Find next", lambda: self.find_next(1), QKeySequence("F3"))
        self.find_prev_action = self._action("Find previous", lambda: self.find_next(-1), QKeySequence("Shift+F3"))
        self.goto_action = self._action("Go to page…", self._focus_page_box, QKeySequence("Ctrl+G"))
        self.highlight_action = self._action("Highlights", self.view.set_highlights_visible, QKeySequence("Ctrl+H"),
                                             "Show or hide what the model relied on (Ctrl+H)")
        self.highlight_action.setCheckable(True)
        self.highlight_action.setChecked(True)
        self.settings_action = self._action("Settings…", self.show_settings, keys.Preferences)
        self.quit_action = self._action("Quit", self.close, keys.Quit)
        self.side_action = self._action("Side panel", lambda on: self.side.setVisible(on), QKeySequence("F9"))
        self.side_action.setCheckable(True)
        self.side_action.setChecked(True)

        self.page_box = QSpinBox()
        self.page_box.setMinimum(1)
        self.page_box.setMaximum(1)
        self.page_box.setKeyboardTracking(False)
        self.page_box.setToolTip("Go to page (Ctrl+G)")
        self.page_box.valueChanged.connect(lambda value: self.view.go_to_page(value - 1))
        self.page_total = QLabel(" / 0 ")
        self.zoom_label = QLabel("100%")
        self.legend = RelevanceLegend()

        tools = QToolBar("Main")
        tools.setObjectName("mainToolbar")
        tools.setMovable(False)
        self.addToolBar(tools)
        tools.addAction(self.open_action)
        tools.addSeparator()
        tools.addAction(self.zoom_out_action)
        tools.addWidget(self.zoom_label)
        tools.addAction(self.zoom_in_action)
        tools.addAction(self.fit_width_action)
        tools.addAction(self.fit_page_action)
        tools.addSeparator()
        tools.addWidget(QLabel(" Page "))
        tools.addWidget(self.page_box)
        tools.addWidget(self.page_total)
        tools.addSeparator()
        tools.addAction(self.find_action)
        tools.addAction(self.highlight_action)
        tools.addWidget(self.legend)
        spacer = QWidget()
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        tools.addWidget(spacer)
        tools.addAction(self.settings_action)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        file_menu.addAction(self.settings_action)
        file_menu.addAction(self.quit_action)
        view_menu = menu.addMenu("&View")
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_width_action, self.fit_page_action,
                       self.goto_action, self.find_action, self.find_next_action, self.find_prev_action,
                       self.highlight_action, self.side_action):
            view_menu.addAction(action)

    def _build_worker(self, engine) -> None:
        self.worker = EngineWorker(self.engine_settings, engine=engine)
        self.engine_thread = EngineThread(self.worker)
        self.engine_thread.start()

    def _connect(self) -> None:
        view, chat, worker = self.view, self.chat, self.worker
        view.sig_opened.connect(self._on_pdf_opened)
        view.sig_failed.connect(lambda message: self.show_error("pdf", message))
        view.worker.sig_needs_password.connect(self._ask_password)
        view.sig_page_changed.connect(self._on_page_changed)
        view.sig_zoom_changed.connect(lambda zoom: self.zoom_label.setText(f"{zoom * 100:.0f}%"))
        view.sig_find_done.connect(self._on_find_done)
        view.sig_thumbnail.connect(self.side.set_thumbnail)
        self.side.sig_go.connect(view.go_to_page)
        self.find_bar.sig_find.connect(view.find)
        self.find_bar.sig_next.connect(self.find_next)
        self.find_bar.sig_closed.connect(view.clear_find)
        chat.sig_ask.connect(self.ask)
        chat.sig_stop.connect(self.stop)
        chat.sig_clear.connect(self.clear_chat)
        chat.sig_evidence.connect(view.flash)
        chat.sig_selected.connect(self.show_answer_highlights)
        worker.sig_busy.connect(self._on_busy)
        worker.sig_progress.connect(self._on_progress)
        worker.sig_model.connect(self._on_model)
        worker.sig_document.connect(self._on_document)
        worker.sig_document_row.connect(self._on_document_row)
        worker.sig_history.connect(self._on_history)
        worker.sig_text.connect(chat.append_text)
        worker.sig_answer.connect(self._on_answer)
        worker.sig_cancelled.connect(self._on_cancelled)
        worker.sig_error.connect(self.show_error)
        worker.sig_recent.connect(self._fill_recent)
        worker.sig_cache_cleared.connect(self._on_cache_cleared)  # (a lambda would run in the worker's thread)

    # --- documents --------------------------------------------------------------------------------
    def choose_file(self) -> None:
        start = str(Path(self.path).parent) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self, "Open a PDF", start, "PDF documents (*.pdf);;All files (*)")
        if path:
            self.open_pdf(path)

    def open_pdf(self, path: str | Path, page: int | None = None) -> None:
        """Show ``path`` in the reader now; the engine reads it in the background."""
        path = str(Path(path).expanduser().resolve())
        self._save_page()
        if self.chat.busy:
            self.stop()
        self.path, self.sha256, self.handle, self.password = path, None, None, None
        self._pending_question = None
        self._prepare_requested = False
        self._restore_page = page
        self.banners.clear()
        self.chat.clear()
        self.view.set_highlights([])
        self.view.open(path, page or 0)
        self.worker.req_lookup.emit(path)
        self.activity.setText(f"Opening {Path(path).name}")

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
        self.page_box.blockSignals(True)
        self.page_box.setMaximum(max(1, len(info.page_sizes)))
        self.page_box.setValue(self.view.current_page() + 1)  # the view may have moved before the maximum was set
        self.page_box.blockSignals(False)
        self.page_total.setText(f" / {len(info.page_sizes)} ")
        self.side.set_document(info.outline, len(info.page_sizes))
        self.activity.setText("Ready")
        if not info.has_text:
            self.banners.show_banner("text", "warning",
                                     "This PDF has no text layer (it looks like a scan), so DocFocus cannot read "
                                     "it or answer questions about it. Run OCR on it first (for example with "
                                     "ocrmypdf) and open the result.")
            return
        if self.auto_prepare:
            self.prepare()

    def prepare(self) -> None:
        """Load the model, open and read the current document in the engine thread."""
        if self.path and not self._prepare_requested:
            self._prepare_requested = True
            self.worker.req_configure.emit(self.engine_settings)
            self.worker.req_prepare.emit(self.path, self.password, self.worker.stop_generation)

    def _on_document_row(self, path: str, sha256: str, last_page: int) -> None:
        if path != self.path:
            return
        self.sha256 = sha256
        if self._restore_page is None and last_page > 0:
            self.view.go_to_page(last_page)  # reopen where the user left off

    def _on_document(self, path: str, handle) -> None:
        if path != self.path:
            return
        self.handle = handle
        self.sha256 = handle.sha256
        notice = handle.notice()
        if notice:  # read whole (selection) is news; truncation is a warning
            self.banners.show_banner("window", "info" if getattr(handle, "method", "") == "select" else "warning", notice)
        if self._pending_question is not None:
            question, self._pending_question = self._pending_question, None
            self.worker.req_ask.emit(handle, question, self.worker.stop_generation)
        self.request_recent()
        self.sig_document_ready.emit(handle)

    def _on_history(self, sha256: str, entries: list) -> None:
        if sha256 != self.sha256 or self.chat.cards:
            return
        last = None
        for entry in entries:
            last = self.chat.add_entry(dict(entry))
        if last is not None:
            self.chat.select(last)

    def _on_page_changed(self, page: int) -> None:
        self.page_box.blockSignals(True)
        self.page_box.setValue(page + 1)
        self.page_box.blockSignals(False)
        self._save_page_timer.start()

    def _save_page(self) -> None:
        if self.sha256 and self.view.pages:
            self.worker.req_last_page.emit(self.sha256, self.view.current_page())

    def request_recent(self) -> None:
        self.worker.req_recent.emit(RECENT_LIMIT)

    def _fill_recent(self, rows: list) -> None:
        self.recent_menu.clear()
        for row in rows:
            action = self.recent_menu.addAction(f"{row.get('title') or Path(row['path']).stem}")
            action.setToolTip(row["path"])
            action.setEnabled(Path(row["path"]).is_file())
            action.triggered.connect(lambda _=False, path=row["path"]: self.open_pdf(path))
        self.recent_menu.setEnabled(bool(rows))

    # --- asking --------------------------------------------------------------------------------------
    def ask(self, question: str) -> None:
        if not self.path:
            self.show_error("ask", "Open a PDF first (Ctrl+O or drop one on the window).")
            return
        self.chat.start_answer(question)
        if self.handle is None:
            self._pending_question = question
            self.prepare()
            return
        self.worker.req_ask.emit(self.handle, question, self.worker.stop_generation)

    def stop(self) -> None:
        """Stop the answer being generated (the worker checks between tokens)."""
        self._pending_question = None
        self.worker.cancel()

    def cancel(self) -> None:
        """Cancel model loading or document reading."""
        self.worker.cancel()
        if self._pending_question is not None:
            self._pending_question = None
            self.chat.fail_answer("Cancelled.")

    def _on_answer(self, answer) -> None:
        entry = answer_entry(answer)
        self.chat.finish_answer(entry)
        if entry["evidence"] and not answer.stopped:  # show where the answer came from
            best = entry["evidence"][0]
            boxes = best.get("boxes") or []
            self.view.go_to_page(int(best["page"]) - 1, (min(b[1] for b in boxes) if boxes else None))
        self.attention_label.setText(self._attention_text(entry["attention"]))
        notice = answer.notice or ""
        if self.handle is not None and notice.startswith(self.handle.notice() or "\0"):
            notice = notice[len(self.handle.notice()):].strip()  # the window notice already has its banner
        if notice:
            self.banners.show_banner("notice", "info", notice)
        self.sig_answer_shown.emit(entry)

    def _on_cancelled(self, job: str) -> None:
        self.activity.setText("Cancelled")
        if job == "open":
            self._prepare_requested = False
        if job in ("ask", "open") and self.chat.busy:
            self.chat.fail_answer("Stopped before the answer began.")

    def clear_chat(self) -> None:
        if self.chat.busy:
            self.stop()
        self.chat.clear()
        self.view.set_highlights([])
        if self.sha256:
            self.worker.req_clear_history.emit(self.sha256)

    def show_answer_highlights(self, entry: dict) -> None:
        """Highlights of ``entry`` (an answer) on the pages: words of its kept tokens, or its evidence."""
        if self.handle is None:
            token_word, words = None, []
        else:
            token_word, words = self.handle.token_word, self.handle.ingested.words
        scores = entry.get("token_scores")
        self.view.set_highlights(answer_highlights(None if scores is None else np.asarray(scores),
                                                   entry.get("evidence") or [], token_word, words))

    # --- reader helpers -----------------------------------------------------------------------------
    def show_find(self) -> None:
        self.find_bar.show()
        self.find_bar.edit.setFocus()
        self.find_bar.edit.selectAll()

    def find_next(self, step: int) -> None:
        self.view.find_next(step)
        self.find_bar.set_count(len(self.view.find_hits), self.view.find_index)

    def _on_find_done(self, count: int) -> None:
        self.find_bar.set_count(count, self.view.find_index)

    def _focus_page_box(self) -> None:
        self.page_box.setFocus()
        self.page_box.selectAll()

    # --- status, progress, errors ------------------------------------------------------------------
    def _on_busy(self, text: str) -> None:
        self.activity.setText(text or "Ready")
        if not text:
            self._show_progress(False)
            self._progress_stage = ""

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if stage != self._progress_stage:
            self._progress_stage, self._progress_started = stage, time.monotonic()
        self._show_progress(done < total)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.activity.setText(stage)
        elapsed = time.monotonic() - self._progress_started
        if 0 < done < total and elapsed > 0.3:
            left = elapsed * (total - done) / done
            self.eta.setText(f"about {left:.0f} s left" if left < 90 else f"about {left / 60:.0f} min left")
        else:
            self.eta.setText("")

    def _show_progress(self, visible: bool) -> None:
        for widget in (self.progress, self.eta, self.cancel_button):
            widget.setVisible(visible)

    def _on_cache_cleared(self) -> None:
        self.banners.show_banner("cache", "info", "The state cache is empty: documents are read again "
                                                  "(and stored again) at their next question.")

    def _on_model(self, info: dict) -> None:
        self.model_info = info
        self._update_status_labels()

    def _update_status_labels(self) -> None:
        info = self.model_info or {}
        model = info.get("id") or (self.engine_settings.model or "bundled model")
        self.model_label.setText(f"Model: {model}" + ("" if info else " (not loaded)"))
        device = info.get("device_name") or info.get("device") or self.engine_settings.device
        self.device_label.setText(f"Device: {device}")
        self.attention_label.setText(self._attention_text({"mode": self.engine_settings.attention_mode}))

    def _attention_text(self, attention: dict) -> str:
        mode = attention.get("mode") or self.engine_settings.attention_mode
        if mode == "dga":
            gamma = attention.get("gamma", self.engine_settings.gamma)
            group = attention.get("group_size", self.engine_settings.group_size)
            return f"Attention: DGA (γ {gamma:g}, m {group})"
        return f"Attention: {mode}"

    def show_error(self, job: str, message: str) -> None:
        """A worker's failure as a banner (never a crash); the window stays usable."""
        if job == "ask" and self.chat.busy:
            self.chat.fail_answer(message)
        if job == "open":
            self._prepare_requested = False
            if self._pending_question is not None:
                self._pending_question = None
                self.chat.fail_answer(message)
        self.banners.show_banner("error", "error", message)
        self.activity.setText("Error")
        self.sig_error_shown.emit(job, message)

    # --- settings -------------------------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.engine_settings, can_clear_cache(self.worker.engine), self)
        dialog.sig_clear_cache.connect(self.worker.req_clear_cache)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()
        return dialog

    def apply_settings(self, settings) -> None:
        changed = settings != self.engine_settings
        self.engine_settings = settings
        save_engine_settings(self.store, settings)
        if changed:
            self.worker.req_configure.emit(settings)
            self.model_info = None
            self.handle = None  # the next question reopens the document with the new engine
            self._prepare_requested = False
        self._update_status_labels()

    # --- window events ------------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if any(url.toLocalFile().lower().endswith(".pdf") for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".pdf"):
                self.open_pdf(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event) -> None:
        self._save_page()
        self.view.shutdown()
        self.engine_thread.shutdown(30_000)
        super().closeEvent(event)
