"""The chat pane: question box, streamed answers, Stop, Clear chat (with Undo), Copy.

The pane only shows things and reports what the user did; the main window talks to the engine
worker. Answers being generated are known by their job id, so a late piece of a stopped answer
still lands in its own card. Signals:
- ``sig_ask(question)``: the user sent a question (the box keeps it until ``start_answer`` takes it).
- ``sig_stop()``: the Stop button.
- ``sig_clear()``: a Clear chat that was not undone: delete the document's saved chat now.
- ``sig_passage(page, boxes, document)``: a citation or evidence passage was clicked (0-based page, boxes in
  points; ``document``: {"sha256", "path", "title"} for a library answer's passage, else None).
- ``sig_scope(scope)``: the scope switch: "document" (questions about the open document) or "library"
  (questions across the whole library).
- ``sig_selected(entry)``: an answer card was selected (its entry dict, see app/gui/answer_card.py).
- ``sig_waiting(job_id)``: a question was accepted; its card waits for the first word of the answer (what it
  waits for is put in words by app/gui/waiting.py).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.errors import QuestionError
from engine.model.prompt import check_question

from .answer_card import AnswerCard
from .theme import secondary_text

UNDO_SECONDS = 10
NO_DOCUMENT_HINT = "Open a document and ask a question about it."
DOCUMENT_HINT = "Ask a question about this document.\nEnter sends, Shift+Enter starts a new line."
LIBRARY_HINT = ("Ask a question across every document of the library (the Library tab on the left).\n"
                "Sources name their document: click one to open it there.")
SCOPES = (("document", "This document", "Questions are about the document open in the reader"),
          ("library", "Whole library", "Questions are answered from every ready document of the library"))


class QuestionBox(QPlainTextEdit):
    """Enter sends, Shift+Enter makes a new line."""

    sig_submit = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.sig_submit.emit()
            return
        super().keyPressEvent(event)


class UndoBar(QFrame):
    """"Chat cleared. Undo" for a few seconds after Clear chat."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        self.label = QLabel("Chat cleared.")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip(f"Bring the chat back (possible for {UNDO_SECONDS} s)")
        layout.addWidget(self.label, 1)
        layout.addWidget(self.undo_button)


class ChatPane(QWidget):
    sig_ask = Signal(str)
    sig_stop = Signal()
    sig_clear = Signal()
    sig_passage = Signal(int, object, object)
    sig_selected = Signal(object)
    sig_scope = Signal(str)
    sig_waiting = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cards: list[AnswerCard] = []
        self.current: AnswerCard | None = None  # the card being streamed
        self.selected: AnswerCard | None = None
        self._by_job: dict[int, AnswerCard] = {}
        self._cleared: list[dict] = []  # entries of a Clear chat that can still be undone
        self.scope = "document"
        self._document = (False, "")  # (open, title) for the hints
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        header = QHBoxLayout()
        title = QLabel("Chat")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.clear_button = QPushButton("Clear chat")
        self.clear_button.setToolTip("Forget this document's saved chat (you can undo it for a few seconds)")
        self.clear_button.clicked.connect(self.clear_chat)
        header.addWidget(title)
        header.addStretch(1)
        self.scope_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        for key, label, tip in SCOPES:
            button = self.scope_buttons[key] = QPushButton(label)
            button.setCheckable(True)
            button.setToolTip(tip)
            button.setObjectName(f"scope_{key}")
            button.clicked.connect(lambda _=False, key=key: self.set_scope(key))
            group.addButton(button)
            header.addWidget(button)
        self.scope_buttons["document"].setChecked(True)
        header.addSpacing(8)
        header.addWidget(self.clear_button)
        self.undo_bar = UndoBar()
        self.undo_bar.undo_button.clicked.connect(self.undo_clear)
        self.undo_bar.hide()
        self.undo_timer = QTimer(self, singleShot=True, interval=UNDO_SECONDS * 1000)
        self.undo_timer.timeout.connect(self.commit_clear)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        self.cards_layout = QVBoxLayout(holder)
        self.cards_layout.setContentsMargins(2, 2, 2, 2)
        self.placeholder = QLabel(NO_DOCUMENT_HINT)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        secondary_text(self.placeholder)
        self.cards_layout.addWidget(self.placeholder)
        self.cards_layout.addStretch(1)
        self.scroll.setWidget(holder)
        self.question = QuestionBox()
        self.question.setFixedHeight(64)
        self.question.sig_submit.connect(self.submit)
        self.question_note = QLabel()  # why a question was not sent (too long); the box keeps the text
        self.question_note.setWordWrap(True)
        self.question_note.setObjectName("question_note")
        self.question_note.hide()
        self.question.textChanged.connect(self._question_edited)
        buttons = QHBoxLayout()
        self.send_button = QPushButton("Ask")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the answer (also while the document is still being read)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.sig_stop)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout.addLayout(header)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.question)
        layout.addWidget(self.question_note)
        layout.addLayout(buttons)
        self.set_document_open(False)

    @property
    def busy(self) -> bool:
        return self.current is not None

    def set_document_open(self, is_open: bool, title: str = "") -> None:
        """Hints that fit: how to start without a document, what to ask with one, or across the library."""
        self._document = (is_open, title)
        if self.scope == "library":
            self.placeholder.setText(LIBRARY_HINT)
            self.question.setPlaceholderText("Ask across the whole library…")
            return
        self.placeholder.setText(DOCUMENT_HINT if is_open else NO_DOCUMENT_HINT)
        self.question.setPlaceholderText(f"Ask about {title or 'this document'}…" if is_open
                                         else "Open a document first, then ask about it here…")

    def set_scope(self, scope: str) -> None:
        """Ask about the open document ("document") or across the whole library ("library")."""
        self.scope_buttons[scope].setChecked(True)
        if scope != self.scope:
            self.scope = scope
            self.clear_button.setToolTip("Clear the library's chat (you can undo it for a few seconds)"
                                         if scope == "library" else
                                         "Forget this document's saved chat (you can undo it for a few seconds)")
            self.set_document_open(*self._document)
            self.sig_scope.emit(scope)

    def submit(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self.busy:
            return
        try:
            check_question(text)
        except QuestionError as error:  # said under the box; nothing is sent and nothing typed is lost
            self.question_note.setText(error.user_message())
            self.question_note.show()
            return
        self.sig_ask.emit(text)

    def _question_edited(self) -> None:
        if self.question_note.isVisible():
            try:
                check_question(self.question.toPlainText() or "-")
            except QuestionError:
                return
            self.question_note.hide()

    # --- answers --------------------------------------------------------------------------------
    def start_answer(self, question: str, job_id: int) -> AnswerCard:
        """A question was accepted: it leaves the box and gets a card that its job's results go to."""
        self.commit_clear()  # a new answer is saved: a pending Clear must not delete it later
        self.question.clear()
        card = self._add_card(question)
        self.current = card
        self._by_job[job_id] = card
        self.stop_button.setEnabled(True)
        self.send_button.setEnabled(False)
        self.sig_waiting.emit(job_id)
        return card

    def append_text(self, job_id: int, piece: str) -> None:
        card = self._by_job.get(job_id)
        if card is not None:
            card.append(piece)
            if card is self.current:
                self._scroll_to_end()

    def waiting_cards(self) -> dict[int, AnswerCard]:
        """Cards of questions still waiting for their first word, by job id."""
        return {job_id: card for job_id, card in self._by_job.items() if card.waiting}

    def finish_answer(self, job_id: int, entry: dict) -> AnswerCard | None:
        card = self._by_job.pop(job_id, None)
        if card is None:
            return None
        if card is self.current:
            self._end_streaming()
        card.finish(entry)
        self.select(card)
        self._scroll_to_end()
        return card

    def stop_answer(self, message: str = "Stopped before the answer began.") -> None:
        """Stop pressed: the card says so at once and the box takes the next question."""
        if self.current is not None:
            self.current.mark_stopped(message)
        self._end_streaming()
        self.question.setFocus()

    def fail_answer(self, job_id: int, message: str) -> None:
        card = self._by_job.pop(job_id, None)
        if card is None:
            return
        if card is self.current:
            self._end_streaming()
        if not card.entry.get("stopped"):
            card.fail(message)

    def add_entry(self, entry: dict) -> AnswerCard:
        """A finished answer from the saved history."""
        card = self._add_card(entry.get("question", ""))
        card.finish(entry)
        return card

    def select(self, card: AnswerCard | None) -> None:
        for other in self.cards:
            other.set_selected(other is card)
        self.selected = card
        if card is not None and card.finished:
            self.sig_selected.emit(card.entry)

    # --- clearing -------------------------------------------------------------------------------
    def clear_chat(self) -> None:
        """Clear chat: the cards go at once; the saved chat is deleted when the Undo time is over."""
        if self.busy:
            self.sig_stop.emit()
        self.commit_clear()
        entries = [card.entry for card in self.cards if card.finished]
        self.clear()
        if entries:
            self._cleared = entries
            self.undo_bar.show()
            self.undo_timer.start()
        self.sig_selected.emit({})

    def undo_clear(self) -> None:
        entries, self._cleared = self._cleared, []
        self.undo_timer.stop()
        self.undo_bar.hide()
        last = None
        for entry in entries:
            last = self.add_entry(entry)
        if last is not None:
            self.select(last)

    def commit_clear(self) -> None:
        """Make a pending Clear chat final (the Undo time ran out, or a new question or document came)."""
        self.undo_timer.stop()
        self.undo_bar.hide()
        if self._cleared:
            self._cleared = []
            self.sig_clear.emit()

    def clear(self) -> None:
        """Remove every card (another document was opened)."""
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards, self.current, self.selected, self._by_job = [], None, None, {}
        self.placeholder.show()
        self._end_streaming()

    def _add_card(self, question: str) -> AnswerCard:
        self.placeholder.hide()
        card = AnswerCard(question)
        card.sig_clicked.connect(self.select)
        card.sig_passage.connect(self.sig_passage)
        self.cards_layout.insertWidget(self.cards_layout.count() - 1, card)
        card.show()
        self.cards.append(card)
        return card

    def _end_streaming(self) -> None:
        self.current = None
        self.stop_button.setEnabled(False)
        self.send_button.setEnabled(True)

    def _scroll_to_end(self) -> None:
        QTimer.singleShot(0, lambda: self.scroll.verticalScrollBar().setValue(
            self.scroll.verticalScrollBar().maximum()))
