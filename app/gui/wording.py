"""Plain words for the window, with the technical detail kept for tooltips (and the JSON)."""
from __future__ import annotations

from engine.settings import OPTION


def document_banner(handle) -> tuple[str, str, str] | None:
    """(kind, text, tooltip) of the banner for a document that does not fit the model's window, or None."""
    info = handle.info()
    pages, detail = info["pages"], handle.notice() or ""
    if info["method"] == "select":
        return "info", (f"Reads all {pages} pages; answers from the passages that match your question. "
                        "Reading a document this long takes a while the first time."), detail
    if handle.truncated:
        return "warning", (f"This document is too long for the model to read whole: answers use pages "
                           f"1-{info['pages_used']} of {pages}. Settings can make it read all of it."), detail
    return None


def choice_label(option_name: str, value: str) -> str:
    """The plain label of a setting's value (as the settings dialog shows it)."""
    for choice in OPTION[option_name].choice_list():
        if choice.value == value:
            return choice.label
    return value


def answer_method(settings) -> tuple[str, str]:
    """(status bar text, tooltip) for what answers read and how they attend to the document."""
    context = getattr(settings, "answer_context", None)
    if context is not None and "answer_context" in OPTION:
        label = choice_label("answer_context", context).split(" (")[0]  # without "(best for small models)"
    else:
        label = choice_label("attention_mode", settings.attention_mode)
    detail = f"context: {context}; " if context is not None else ""
    detail += f"attention: {settings.attention_mode}"
    if settings.attention_mode == "dga":
        detail += f" (γ {settings.gamma:g}, m {settings.group_size})"
    return f"Answers from: {label}" if context is not None else f"Answers: {label}", detail
