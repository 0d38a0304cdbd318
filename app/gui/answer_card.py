"""One question and its answer in the chat: citations, the verdict, how it ended, evidence, Copy.

An entry is a dict with the keys of ``engine.answer.result.Answer`` (and of ``engine.store.history`` rows, where
older rows have empty lists): question, answer, supported, verdict, quote, finish, stopped, citations, evidence,
highlights, attention, timings. Pages in entries are 1-based; the card's signals give 0-based pages.

The answer is shown as it streamed (Markdown rendered) and never replaced: an answer that is not supported by
the document gets a badge that says so, with its reason, and the document's own sentence below it (what the
document says when that sentence answers the question, else the closest passage), a link to its page.
"""
from __future__ import annotations

from dataclasses import asdict, is_dataclass
from html import escape

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QStyle,
                               QToolButton, QVBoxLayout, QWidget)

from engine.answer.result import Highlight

from .theme import secondary_text

SNIPPET_CHARS = 110
CARD_STYLE = "#answerCard {{ border: {width}px {line} {color}; border-radius: 6px; }}"


def answer_entry(answer) -> dict:
    """An ``engine.answer.result.Answer`` as the plain dict the chat and the history use."""
    plain = (lambda item: asdict(item) if is_dataclass(item) else dict(item))
    return {"question": answer.question, "answer": answer.answer, "supported": answer.supported,
            "finish": answer.finish, "stopped": answer.stopped,
            "verdict": plain(answer.verdict) if answer.verdict is not None else None,
            "quote": plain(answer.quote) if answer.quote is not None else None,
            "citations": [plain(c) for c in answer.citations], "evidence": [plain(e) for e in answer.evidence],
            "highlights": [plain(h) for h in answer.highlights], "attention": dict(answer.attention or {}),
            "timings": dict(answer.timings or {}), "model": dict(answer.model or {}),
            "library": bool((answer.document or {}).get("library"))}


def entry_highlights(entry: dict, sha256: str | None = None) -> list[Highlight]:
    """The entry's highlights as ``engine.answer.result.Highlight`` objects (history rows hold dicts); of an answer
    across the library, only those on the document ``sha256`` (the one in the reader)."""
    lights = [h if isinstance(h, Highlight) else Highlight(int(h["page"]), list(h["box"]), float(h["weight"]),
                                                           h.get("document"))
              for h in entry.get("highlights") or []]
    return [h for h in lights if not entry.get("library") or h.document == sha256]


def source_name(item: dict, library: bool = False) -> str:
    """"p. 4", or "Title, p. 4" for a passage of an answer across the library."""
    document = item.get("document") or {}
    title = document.get("title") or (document.get("path") or "").rsplit("/", 1)[-1]
    return f"{title}, p. {int(item['page'])}" if library and document else f"p. {int(item['page'])}"


def markdown(text: str) -> str:
    """The answer as Markdown for a label: code, emphasis and lists render; "<" and "&" stay characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;")


def verdict_words(entry: dict) -> tuple[str, str]:
    """(the badge of an answer that is not supported, the line before the document's own sentence)."""
    scope = "library" if entry.get("library") else "document"
    quote = entry.get("quote") or {}
    if quote.get("answers"):
        return f"Not supported by the {scope}", "The document says"
    return f"Not found in the {scope}", "Closest passage"


def meta_text(entry: dict) -> tuple[str, str]:
    """(plain words under the answer, the technical detail for its tooltip)."""
    timings, attention = entry.get("timings") or {}, entry.get("attention") or {}
    shown = f"{timings['total_s']:.1f} s" if timings.get("total_s") is not None else ""
    details = [f"{key}: {value}" for key, value in attention.items() if not isinstance(value, (dict, list))]
    details += [f"ranked by: {', '.join(attention['ranking'])}"] if attention.get("ranking") else []
    details += [f"{key}: {value}" for key, value in timings.items() if value is not None]
    return shown, "\n".join(details)


class AnswerCard(QFrame):
    """A chat card. ``sig_clicked(card)`` on a press anywhere on it (its text included);
    ``sig_passage(page, boxes, document)`` when a citation or evidence passage is clicked (0-based page;
    ``document`` names a library answer's document, else None)."""

    sig_clicked = Signal(object)
    sig_passage = Signal(int, object, object)

    def __init__(self, question: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("answerCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.entry: dict = {"question": question, "answer": "", "evidence": [], "citations": [], "highlights": []}
        self.streamed = ""
        self.finished = False
        self.library = False  # an answer across the library: its sources name their documents
        self.selected = False
        self.failed = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.question_label = self._label(question, bold=True)
        self.support_row, self.support_icon, self.support_label = self._badge()
        self.answer_label = self._label("…")
        self.answer_label.setTextFormat(Qt.TextFormat.MarkdownText)
        self.quote_label = QLabel()
        self.quote_label.setObjectName("quote")
        self.quote_label.setWordWrap(True)
        self.quote_label.setTextFormat(Qt.TextFormat.RichText)
        self.quote_label.linkActivated.connect(self._quote_clicked)
        self.quote_label.hide()
        self.wait_bar = QProgressBar()  # under the words of what the question waits for, until the answer begins
        self.wait_bar.setTextVisible(False)
        self.wait_bar.setMaximumHeight(6)
        self.wait_bar.hide()
        self.citations_label = QLabel()
        self.citations_label.setTextFormat(Qt.TextFormat.RichText)
        self.citations_label.linkActivated.connect(self._citation_clicked)
        self.citations_label.hide()
        self.evidence_toggle = QToolButton()
        self.evidence_toggle.setAutoRaise(True)
        self.evidence_toggle.setCheckable(True)
        self.evidence_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.evidence_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.evidence_toggle.toggled.connect(self._toggle_evidence)
        self.evidence_toggle.hide()
        self.evidence_list = QWidget()
        self.evidence_box = QVBoxLayout(self.evidence_list)
        self.evidence_box.setContentsMargins(12, 0, 0, 0)
        self.evidence_box.setSpacing(2)
        self.evidence_list.hide()
        footer = QHBoxLayout()
        self.meta_label = secondary_text(QLabel(""))
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy this answer to the clipboard")
        self.copy_button.clicked.connect(self.copy_answer)
        footer.addWidget(self.meta_label, 1)
        footer.addWidget(self.copy_button)
        for widget in (self.question_label, self.support_row, self.answer_label, self.wait_bar, self.quote_label,
                       self.citations_label, self.evidence_toggle, self.evidence_list):
            layout.addWidget(widget)
        layout.addLayout(footer)
        self.set_selected(False)

    def _badge(self) -> tuple[QWidget, QLabel, QLabel]:
        """The verdict badge: a real icon from the style (no glyph a font may lack) and its words."""
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        icon = QLabel()
        icon.setObjectName("supportIcon")
        size = self.fontMetrics().height()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(size, size))
        label = QLabel("Not supported by the document")
        label.setObjectName("supportBadge")
        label.setWordWrap(True)
        box.addWidget(icon)
        box.addWidget(label, 1)
        row.hide()
        return row, icon, label

    def _label(self, text: str, bold: bool = False) -> QLabel:
        label = QLabel(text)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.installEventFilter(self)  # selectable text takes the press: select the card from it too
        if bold:
            font = label.font()
            font.setBold(True)
            label.setFont(font)
        return label

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.MouseButtonPress:
            self.sig_clicked.emit(self)
        return False  # the label still selects text

    def mousePressEvent(self, event) -> None:
        self.sig_clicked.emit(self)
        super().mousePressEvent(event)

    # --- content ------------------------------------------------------------------------------
    @property
    def waiting(self) -> bool:
        """Asked, but no word of the answer yet (and not ended)."""
        return not self.streamed and not self.finished and not self.entry.get("stopped") and not self.failed

    def set_waiting(self, text: str, done: int = 0, total: int = 0) -> None:
        """What the question waits for, in words, with its progress (a busy bar while there are no numbers)."""
        if not self.waiting:
            return
        self.answer_label.setText(text)
        self.wait_bar.setRange(0, total if 0 < done < total else 0)
        self.wait_bar.setValue(done)
        self.wait_bar.show()

    def append(self, piece: str) -> None:
        self.streamed += piece
        self.wait_bar.hide()
        self.answer_label.setText(markdown(self.streamed))

    def finish(self, entry: dict) -> None:
        self.entry = entry
        self.finished = True
        self.wait_bar.hide()
        text = entry.get("answer") or self.streamed.strip()
        finish = entry.get("finish") or ("stopped" if entry.get("stopped") else "complete")
        if finish == "stopped" or entry.get("stopped"):
            text = f"{text}  [stopped]" if text else "Stopped before the answer began."
        elif finish == "length":
            text = (text or "(no answer)") + "  [cut at the length limit: Settings > Longest answer]"
        text = text or "(The model gave no answer.)"
        self.answer_label.setText(markdown(text))
        self.library = bool(entry.get("library"))
        self._show_support(entry)
        self._show_citations(entry.get("citations") or [])
        self._show_evidence(entry.get("evidence") or [])
        shown, details = meta_text(entry)
        self.meta_label.setText(shown)
        self.meta_label.setToolTip(details)

    def mark_stopped(self, message: str) -> None:
        """The user stopped this answer; ``message`` stands in until (or unless) a partial answer arrives."""
        self.entry["answer"] = self.streamed
        self.entry["stopped"] = True
        self.wait_bar.hide()
        self.answer_label.setText(markdown((self.streamed + "  [stopped]") if self.streamed else message))

    def fail(self, message: str) -> None:
        self.entry["answer"] = self.streamed
        self.failed = True
        self.wait_bar.hide()
        self.answer_label.setText(markdown((self.streamed + "\n\n" if self.streamed else "") + f"⚠ {message}"))

    def _show_support(self, entry: dict) -> None:
        """The verdict as soon as it is known: a badge and its reason; the answer stays as it was read."""
        supported = entry.get("supported", True)
        self.unsupported = not supported
        badge, lead = verdict_words(entry)
        reason = (entry.get("verdict") or {}).get("reason") or ""
        self.support_label.setText(f"<b>{escape(badge)}</b>" + (f": {escape(reason)}" if reason else ""))
        self.support_row.setToolTip(self._signals_tip(entry))
        self.support_row.setVisible(not supported)
        quote = entry.get("quote") if not supported else None
        if quote:
            where = escape(source_name(quote, self.library))
            self.quote_label.setText(f'{lead}, <a href="quote">{where}</a>: “{escape(quote.get("text", ""))}”')
        self.quote_label.setVisible(bool(quote))
        font = self.answer_label.font()
        font.setItalic(not supported)
        self.answer_label.setFont(font)
        self.set_selected(self.selected)

    @staticmethod
    def _signals_tip(entry: dict) -> str:
        verdict = entry.get("verdict") or {}
        signals = ", ".join(f"{name} {value:.2f}" for name, value in (verdict.get("signals") or {}).items())
        if verdict.get("score") is None:
            return "The answer is not supported by the passages it read."
        return (f"Support score {verdict['score']:.2f} (supported from {verdict.get('threshold', 0):.2f})"
                + (f"; signals: {signals}" if signals else ""))

    def _quote_clicked(self, _href: str) -> None:
        quote = self.entry.get("quote") or {}
        self.sig_passage.emit(int(quote["page"]) - 1, list(quote.get("boxes") or []),
                              quote.get("document") if self.library else None)

    def _show_citations(self, citations: list[dict]) -> None:
        links = [f'<a href="{index}">{escape(source_name(c, self.library))}</a>' for index, c in enumerate(citations)]
        self.citations_label.setText("Source: " + ", ".join(links) if links else "")
        self.citations_label.setWordWrap(True)
        self.citations_label.setToolTip("\n\n".join(f"{source_name(c, self.library)}: {c.get('text', '')}"
                                                  for c in citations))
        self.citations_label.setVisible(bool(links))

    def _citation_clicked(self, href: str) -> None:
        citation = self.entry["citations"][int(href)]
        self.sig_passage.emit(int(citation["page"]) - 1, list(citation.get("boxes") or []),
                              citation.get("document") if self.library else None)

    def _show_evidence(self, evidence: list[dict]) -> None:
        for index, item in enumerate(evidence):
            snippet = " ".join(str(item.get("text", "")).split())
            if len(snippet) > SNIPPET_CHARS:
                snippet = snippet[:SNIPPET_CHARS - 1] + "…"
            button = QPushButton(f"{source_name(item, self.library)}  ·  {snippet}")
            button.setObjectName(f"evidence{index}")
            button.setFlat(True)
            button.setStyleSheet("text-align: left; padding: 2px;")
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            button.setToolTip(f"<p>{escape(str(item.get('text', '')))}</p>")  # rich text wraps the full passage
            button.clicked.connect(lambda _=False, item=item: self.sig_passage.emit(
                int(item["page"]) - 1, list(item.get("boxes") or []), item.get("document") if self.library else None))
            self.evidence_box.addWidget(button)
        count = len(evidence)
        self.evidence_toggle.setText(f"Evidence: {count} passage{'s' if count != 1 else ''}, best first")
        self.evidence_toggle.setVisible(bool(count))

    def _toggle_evidence(self, shown: bool) -> None:
        self.evidence_list.setVisible(shown)
        self.evidence_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def copy_answer(self) -> None:
        answer = self.entry.get("answer")
        text = answer if self.finished and answer is not None else self.streamed
        quote = self.entry.get("quote") if self.finished and not self.entry.get("supported", True) else None
        if quote:
            badge, lead = verdict_words(self.entry)
            text = f"{text}\n[{badge}] {lead}, {source_name(quote, self.library)}: “{quote.get('text', '')}”"
        QGuiApplication.clipboard().setText(text)

    def follow_theme(self) -> None:
        """A theme change (app/gui/theme.py): the border is polished again with the new palette, and the links,
        whose colour rich text takes when it is set, are set again."""
        self.set_selected(self.selected)
        for label in (self.citations_label, self.quote_label):
            links = label.text()
            label.setText("")
            label.setText(links)

    def set_selected(self, selected: bool) -> None:
        self.selected = selected
        unsupported = getattr(self, "unsupported", False)
        color = "palette(highlight)" if selected else ("#c89b3c" if unsupported else "palette(mid)")
        self.setStyleSheet(CARD_STYLE.format(width=2 if selected else 1, line="dashed" if unsupported else "solid",
                                             color=color))
