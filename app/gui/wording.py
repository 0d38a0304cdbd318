"""Plain words for the window, with the technical detail kept for tooltips (and the JSON)."""
from __future__ import annotations

from engine.ingest.extract import OCR_STAGE
from engine.settings import OPTION


def document_banners(handle) -> list[tuple[str, str, str, str]]:
    """(key, kind, text, tooltip) of the banners for an opened document: how it was read ("reading": a scan
    recognised by OCR, a repaired file; the engine's own sentences, a warning when pages were lost) and what
    happens when it does not fit the model's window ("window")."""
    banners = []
    report = handle.ingested.report
    read = handle.ingested.notice()
    if read:
        lost = bool(report.damage) or bool(report.ocr and report.ocr.failed)
        detail = report.format + (f"; OCR: {report.ocr.engine}, language setting {report.ocr.languages!r}"
                                   if report.ocr else "")
        banners.append(("reading", "warning" if lost else "info", read, detail))
    info = handle.info()
    pages, detail = info["pages"], handle.notice() or ""
    if info["method"] == "select":
        banners.append(("window", "info", f"Reads all {pages} pages; answers from the passages that match your "
                        "question. Each question reads only the parts it needs, and keeps them for the next one.",
                        detail))
    elif handle.truncated:
        banners.append(("window", "warning", f"This document is too long for the model to read whole: answers use "
                        f"pages 1-{info['pages_used']} of {pages}. Settings can make it read all of it.", detail))
    return banners


def cancelled_reading(stage: str, done: int, total: int) -> str:
    """The status bar's word on a cancelled reading; recognised pages are kept, so the next open goes on."""
    if stage == OCR_STAGE and done:
        return (f"Recognition cancelled after {done} of {total} scanned pages: those are kept, and the next "
                "question goes on from there")
    if stage == OCR_STAGE:
        return "Recognition cancelled: the next question starts it again"
    return "Reading cancelled: the next question reads the document again"


def choice_label(option_name: str, value: str) -> str:
    """The plain label of a setting's value (as the settings dialog shows it)."""
    for choice in OPTION[option_name].choice_list():
        if choice.value == value:
            return choice.label
    return value


def answer_method(settings) -> tuple[str, str]:
    """(status bar text, tooltip) for what answers read and which attention they run with."""
    answer = settings.answer
    label = choice_label("answer_context", answer.context).split(" (")[0]  # without "(best for small models)"
    if answer.context == "passages":
        chosen = "the question's words and meaning" if answer.meaning else "matching the question's words"
        if answer.model_check:
            chosen += ", checked by the model"
        detail = (f"context: the best passages, up to {answer.focal_tokens} tokens, chosen by {chosen}; the answer "
                  "attends to them exactly")
    else:
        attention = settings.attention
        detail = f"context: the whole document; attention: {attention.mode}"
        if attention.mode == "dga":
            detail += f" (γ {attention.dga.gamma:g}, m {attention.dga.group_size})"
    return f"Answers from: {label}", detail
