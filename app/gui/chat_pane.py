"""The chat pane: question box, streamed answers, evidence passages, Stop / Clear / Copy.

The pane only shows things and reports what the user did; the main window
talks to the engine worker. Signals:
- ``sig_ask(question)``: the user sent a question.
- ``sig_stop()``: the Stop button.
- ``sig_clear()``: the Clear chat button.
- ``sig_evidence(page, boxes)``: an evidence passage was clicked (0-based page, boxes in points).
- ``sig_selected(entry)``: an answer card was selected (its dict: question, answer, evidence, token_scores...).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy,
                               QVBoxLayout, QWidget)

SNIPPET_CHARS = 110


class QuestionBox(QPlainTextEdit):
    """Enter sends, Shift+Enter makes a new line."""

    sig_submit = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
                event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self.sig_submit.emit()
            return
        super().keyPressEvent(event)


class AnswerCard(QFrame):
    """One question and its answer, evidence and actions."""

    sig_clicked = Signal(object)
    sig_evidence = Signal(int, object)

    def __init__(self, question: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("answerCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.entry: dict = {"question": question, "answer": "", "evidence": [], "token_scores": None}
        self.streamed = ""
        self.finished = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.question_label = QLabel(question)
        self.question_label.setWordWrap(True)
        self.question_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.question_label.font()
        font.setBold(True)
        self.question_label.setFont(font)
        self.answer_label = QLabel("…")
        self.answer_label.setWordWrap(True)
        self.answer_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.evidence_box = QVBoxLayout()
        self.evidence_box.setSpacing(2)
        footer = QHBoxLayout()
        self.meta_label = QLabel("")
        self.meta_label.setEnabled(False)  # greyed, follows the palette
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy this answer to the clipboard")
        self.copy_button.clicked.connect(self.copy_answer)
        footer.addWidget(self.meta_label, 1)
        footer.addWidget(self.copy_button)
        layout.addWidget(self.question_label)
        layout.addWidget(self.answer_label)
        layout.addLayout(self.evidence_box)
        layout.addLayout(footer)
        self.set_selected(False)

    def append(self, piece: str) -> None:
        self.streamed += piece
        self.answer_label.setText(self.streamed)

    def finish(self, entry: dict) -> None:
        self.entry = entry
        self.finished = True
        text = entry.get("answer") or self.streamed.strip() or "(no answer)"
        if entry.get("stopped"):
            text += "  [stopped]"
        self.answer_label.setText(text)
        for index, item in enumerate(entry.get("evidence") or []):
            snippet = " ".join(str(item.get("text", "")).split())
            if len(snippet) > SNIPPET_CHARS:
                snippet = snippet[:SNIPPET_CHARS - 1] + "…"
            button = QPushButton(f"p. {item['page']}  ·  {snippet}")
            button.setObjectName(f"evidence{index}")
            button.setFlat(True)
            button.setStyleSheet("text-align: left; padding: 2px;")
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            button.setToolTip(str(item.get("text", "")))
            button.clicked.connect(lambda _=False, item=item: self.sig_evidence.emit(
                int(item["page"]) - 1, list(item.get("boxes") or [])))
            self.evidence_box.addWidget(button)
        self.meta_label.setText(_meta_text(entry))

    def fail(self, message: str) -> None:
        self.entry["answer"] = self.streamed
        self.answer_label.setText((self.streamed + "\n" if self.streamed else "") + f"⚠ {message}")

    def copy_answer(self) -> None:
        answer = self.entry.get("answer")
        QGuiApplication.clipboard().setText(answer if self.finished and answer is not None else self.streamed)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        self.setProperty("selected", selected)
        self.setStyleSheet("#answerCard { border: 2px solid palette(highlight); border-radius: 6px; }"
                           if selected else "#answerCard { border: 1px solid palette(mid); border-radius: 6px; }")

    def mousePressEvent(self, event) -> None:
        self.sig_clicked.emit(self)
        super().mousePressEvent(event)


def _meta_text(entry: dict) -> str:
    parts = []
    mode = (entry.get("attention") or {}).get("mode")
    if mode:
        parts.append(f"attention: {mode}")
    timings = entry.get("timings") or {}
    if timings.get("total_s") is not None:
        parts.append(f"{timings['total_s']:.1f} s")
    return " · ".join(parts)


class ChatPane(QWidget):
    sig_ask = Signal(str)
    sig_stop = Signal()
    sig_clear = Signal()
    sig_evidence = Signal(int, object)
    sig_selected = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.cards: list[AnswerCard] = []
        self.current: AnswerCard | None = None  # the card being streamed
        self.selected: AnswerCard | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        header = QHBoxLayout()
        title = QLabel("Chat")
        font = title.font()
        font.setBold(True)
        title.setFont(font)
        self.clear_button = QPushButton("Clear chat")
        self.clear_button.clicked.connect(self.sig_clear)
        header.addWidget(title, 1)
        header.addWidget(self.clear_button)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        self.cards_layout = QVBoxLayout(holder)
        self.cards_layout.setContentsMargins(2, 2, 2, 2)
        self.placeholder = QLabel("Open a PDF and ask a question about it.\n"
                                  "Enter sends, Shift+Enter starts a new line.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setEnabled(False)
        self.cards_layout.addWidget(self.placeholder)
        self.cards_layout.addStretch(1)
        self.scroll.setWidget(holder)
        self.question = QuestionBox()
        self.question.setPlaceholderText("Ask about the document…")
        self.question.setFixedHeight(64)
        self.question.sig_submit.connect(self.submit)
        buttons = QHBoxLayout()
        self.send_button = QPushButton("Ask")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.sig_stop)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        layout.addLayout(header)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.question)
        layout.addLayout(buttons)

    @property
    def busy(self) -> bool:
        return self.current is not None

    def submit(self) -> None:
        text = self.question.toPlainText().strip()
        if not text or self.busy:
            return
        self.question.clear()
        self.sig_ask.emit(text)

    def start_answer(self, question: str) -> AnswerCard:
        card = self._add_card(question)
        self.current = card
        self.stop_button.setEnabled(True)
        self.send_button.setEnabled(False)
        return card

    def append_text(self, piece: str) -> None:
        if self.current is not None:
            self.current.append(piece)
            self._scroll_to_end()

    def finish_answer(self, entry: dict) -> None:
        card = self.current
        self._end_streaming()
        if card is not None:
            card.finish(entry)
            self.select(card)
            self._scroll_to_end()

    def fail_answer(self, message: str) -> None:
        if self.current is not None:
            self.current.fail(message)
        self._end_streaming()

    def add_entry(self, entry: dict) -> AnswerCard:
        """A finished answer from the saved history."""
        card = self._add_card(entry.get("question", ""))
        card.finish(entry)
        return card

    def clear(self) -> None:
        for card in self.cards:
            card.setParent(None)
            card.deleteLater()
        self.cards, self.current, self.selected = [], None, None
        self.placeholder.show()
        self._end_streaming()

    def select(self, card: AnswerCard | None) -> None:
        for other in self.cards:
            other.set_selected(other is card)
        self.selected = card
        if card is not None and card is not self.current:
            self.sig_selected.emit(card.entry)

    def _add_card(self, question: str) -> AnswerCard:
        self.placeholder.hide()
        card = AnswerCard(question)
        card.sig_clicked.connect(self.select)
        card.sig_evidence.connect(self.sig_evidence)
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
