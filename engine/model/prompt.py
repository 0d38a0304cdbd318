"""Prompt layout: a document prefix that never changes between questions.

``[chat head][document tokens]`` is the prefix whose state is computed once
(and cached); each question appends ``[separator + question + assistant head]``.

A base model (a tokenizer without a chat template, e.g. Gemma 3 270M) gets a plain
``Document: ... Question: ... Answer:`` prompt, and its answer ends where it would
go on to another question or paragraph (``stop_texts``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuestionError
from ..ingest.extract import IngestedDocument

SYSTEM_PROMPT = (
    "You answer questions about the document the user gives you. "
    "Answer briefly, using only facts stated in the document."
)
_DOC, _QUESTION = "\x00DOCUMENT\x00", "\x00QUESTION\x00"
_USER_TEMPLATE = f"Document:\n{_DOC}\n\nQuestion: {_QUESTION}"
_BASE_TEMPLATE = f"Document:\n{_DOC}\n\nQuestion: {_QUESTION}\nAnswer:"
# Where a base model's answer ends: it goes on with another question, or past a blank line.
BASE_STOPS = ("\nQuestion:", "Question:", "\n\n")
# Tokens kept free in the window after a document read whole: the question, then the longest answer.
QUESTION_RESERVE = 128
ANSWER_RESERVE = 384
# The longest question, in characters (about 150 words): a question names what it looks for, and the model reads
# every question token against its context, so a pasted page would take minutes on a CPU and crowd out passages.
MAX_QUESTION_CHARS = 1000


@dataclass
class PromptLayout:
    head_ids: list[int]
    doc_ids: np.ndarray  # (L,) int64
    doc_offsets: np.ndarray  # (L, 2) char span of each document token
    question_prefix: str
    question_suffix: str

    @property
    def doc_start(self) -> int:
        return len(self.head_ids)

    @property
    def prefix_len(self) -> int:
        return len(self.head_ids) + len(self.doc_ids)


def _template_pieces(tokenizer) -> tuple[str, str, str]:
    """(head, between document and question, after question) from the chat template."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": _USER_TEMPLATE}]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:  # a base model continues text: a plain document and question, no instructions
        text = _BASE_TEMPLATE
    head, rest = text.split(_DOC)
    middle, tail = rest.split(_QUESTION)
    return head, middle, tail


def stop_texts(tokenizer) -> tuple[str, ...]:
    """Text that ends an answer: none for a chat model (its end-of-turn token does), ``BASE_STOPS`` for a
    base model."""
    return () if getattr(tokenizer, "chat_template", None) else BASE_STOPS


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _with_bos(tokenizer, head: str, ids: list[int]) -> list[int]:
    """``ids`` with the BOS token first where the tokenizer asks for it and the template did not write it. A base
    model's prompt has no template to write it, so it gets BOS wherever its tokenizer starts texts with one
    (Gemma: without it, it answers badly)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None or not tokenizer.bos_token or head.startswith(tokenizer.bos_token) or ids[:1] == [bos]:
        return ids
    adds = getattr(tokenizer, "add_bos_token", False) or (
        not getattr(tokenizer, "chat_template", None) and tokenizer("x")["input_ids"][:1] == [bos])
    return [bos] + ids if adds else ids


def build_layout(tokenizer, document: IngestedDocument) -> PromptLayout:
    head, middle, tail = _template_pieces(tokenizer)
    head_ids = _with_bos(tokenizer, head, _encode(tokenizer, head))
    encoded = tokenizer(document.text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(encoded["input_ids"], dtype=np.int64)
    offsets = np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    return PromptLayout(head_ids, ids, offsets, middle, tail)


def check_question(question: str | None) -> str:
    """The question without surrounding blanks; QuestionError (exit 2) when it is empty or longer than
    MAX_QUESTION_CHARS."""
    question = (question or "").strip()
    if not question:
        raise QuestionError("The question is empty.", "Type a question about the document.")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"The question is {len(question):,} characters long; DocFocus takes questions of up to "
                            f"{MAX_QUESTION_CHARS:,} characters (about 150 words).",
                            "Ask for what you are looking for in a sentence or two: DocFocus finds the passages "
                            "in the document itself.")
    return question


def question_ids(tokenizer, layout: PromptLayout, question: str) -> list[int]:
    question = check_question(question)
    return _encode(tokenizer, layout.question_prefix + question + layout.question_suffix)


def token_words(document: IngestedDocument, offsets: np.ndarray) -> np.ndarray:
    """For each token, the index of the first word it overlaps, or -1 (whitespace, separators)."""
    starts = np.array([w.start for w in document.words], dtype=np.int64)
    ends = np.array([w.end for w in document.words], dtype=np.int64)
    first = np.searchsorted(ends, offsets[:, 0], side="right")  # first word ending after the token starts
    safe = np.minimum(first, len(starts) - 1)
    overlaps = (first < len(starts)) & (starts[safe] < offsets[:, 1]) & (offsets[:, 1] > offsets[:, 0])
    return np.where(overlaps, safe, -1).astype(np.int64)


def chat_ids(tokenizer, document_text: str, question: str) -> list[int]:
    """The whole prompt [chat head + document + question + answer head] for a document given as plain text
    (what a chunk-retrieval pipeline sends; the benchmark's reference rows use it)."""
    head, middle, tail = _template_pieces(tokenizer)
    return _with_bos(tokenizer, head, _encode(tokenizer, head + document_text + middle + question.strip() + tail))
