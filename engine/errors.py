"""Errors the engine raises for bad input or a failing environment.

Every error carries a message a user can act on; the CLI prints it and exits
non-zero, the GUI shows it in the window.
"""
from __future__ import annotations


class DocFocusError(Exception):
    """Base class: ``str(error)`` is the user-facing message, ``hint`` a next step."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def user_message(self) -> str:
        return f"{self}\n{self.hint}" if self.hint else str(self)


class PdfError(DocFocusError):
    """The file is missing, not a PDF, or cannot be parsed."""


class PdfPasswordError(PdfError):
    """The PDF is encrypted and no (or a wrong) password was given."""


class NoTextLayerError(PdfError):
    """The PDF has pages but no extractable text (a scan without OCR)."""


class QuestionError(DocFocusError):
    """The question is empty or otherwise unusable."""


class ModelLoadError(DocFocusError):
    """The model path or id does not exist or is not a causal language model."""


class OutOfMemoryError(DocFocusError):
    """The device ran out of memory while loading or reading."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"Out of memory while {what}.",
            "Try --device cpu, a smaller model, or a shorter document.",
        )


class CancelledError(DocFocusError):
    """The user cancelled a running job."""

    exit_code = 130

    def __init__(self, what: str = "job") -> None:
        super().__init__(f"Cancelled: {what}.")


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures, whatever torch calls them."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text
