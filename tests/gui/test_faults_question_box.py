"""Issue 23, item 6 in the window: a question over the limit is not sent; a message under the box says why and
the box keeps the text (nothing typed is lost); a shorter question is sent as usual."""
from __future__ import annotations

from PySide6.QtCore import Qt

from engine.model.prompt import MAX_QUESTION_CHARS

from gui_support import make_window, qsettings  # noqa: F401 (fixtures)


def test_a_question_over_the_limit_is_kept_and_explained_not_sent(qtbot, make_window):
    chat = make_window().chat
    sent: list[str] = []
    chat.sig_ask.connect(sent.append)
    long_question = "Where is the lighthouse keeper's log kept? " * 100
    chat.question.setPlainText(long_question)
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    assert sent == [] and chat.question.toPlainText() == long_question
    assert chat.question_note.isVisible()
    assert f"{len(long_question.strip()):,} characters long" in chat.question_note.text()
    assert f"up to {MAX_QUESTION_CHARS:,} characters" in chat.question_note.text()
    chat.question.setPlainText(long_question[:MAX_QUESTION_CHARS - 10])  # shortened: the note goes
    assert not chat.question_note.isVisible()
    qtbot.keyClick(chat.question, Qt.Key.Key_Return)
    assert sent == [long_question[:MAX_QUESTION_CHARS - 10].strip()]
