"""The library part of the engine's API: add documents, read them in the background, ask across all of them.

    engine.library_add(["manuals/", "paper.pdf"])   # queued ids (a folder: its documents, recursively)
    while engine.library_read_next(progress):       # one document per call; resumes after a restart
        pass
    engine.library_documents()                      # [{id, path, title, pages, tokens, state, reason, ...}]
    answer = engine.ask_library("Which function reads fixed-width files?", on_text=print)

A GUI runs ``library_read_next`` in a worker thread, one call per document (``should_stop`` cancels: the
document goes back to the queue and the segments read so far are kept), and refreshes its list from
``library_documents`` (state "reading" comes with ``done``/``total`` tokens). ``ask_library`` answers like
``Engine.ask`` (same ranking, selection, compaction, generation, support verdict, citations and highlights);
each evidence item, citation and highlight names its document (``document``: {"sha256", "path", "title"} on
evidence and citations, the sha256 on highlights). Engine mixes this class in (engine/api.py).
"""
from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..answer import story
from ..answer.result import Answer
from ..errors import CancelledError, DocFocusError
from ..ingest.formats import SUFFIXES
from ..model.prompt import check_question
from ..reading.documents import DocumentHandle
from ..reading.lazy import LazyReading
from ..retrieval import ranking as ranking_ops
from .queue import LibraryQueue

log = logging.getLogger("docfocus")
Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
LIBRARY_STATES_KEPT = 4  # documents whose state (head + a few segments) stays in memory between library questions
PROGRESS_EVERY_S = 0.5  # how often a reading's progress is written to the queue


def library_files(paths: list[str | Path]) -> list[Path]:
    """The documents named by ``paths``: files as given, folders searched recursively for the formats DocFocus
    reads (hidden files skipped). A path that does not exist raises DocFocusError, before anything is added."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found.append(path)
        else:
            raise DocFocusError(f"{path} was not found.", "Check the path of the file or folder to add.")
    return list(dict.fromkeys(p.resolve() for p in found))


class LibraryMixin:
    """Engine methods for the library (see the module docstring)."""

    @property
    def library_queue(self) -> LibraryQueue:
        if getattr(self, "_library_queue", None) is None or self._library_queue.db is not self.library.db:
            self._library_queue = LibraryQueue(self.library.db)
        return self._library_queue

    def library_add(self, paths: list[str | Path]) -> list[int]:
        """Queue documents (files, or folders searched recursively) for reading; returns their ids, in order.
        A file already in the library with the same content keeps its state; a changed one is queued again."""
        before = {item["id"]: item["sha256"] for item in self.library_queue.items()}
        ids = list(dict.fromkeys(self.library_queue.add(path) for path in library_files(paths)))
        self._forget_replaced(before)
        return ids

    def _forget_replaced(self, before: dict[int, str]) -> None:
        """Drop the index of content that a changed file replaced (when no other entry holds it)."""
        for item in self.library_queue.items():
            old = before.get(item["id"])
            if old and old != item["sha256"] and not self.library_queue.users(old):
                self.passage_index.remove(old)
                self._library_handles.pop(old, None)

    def library_documents(self) -> list[dict]:
        """The library's documents, in the order added: id, path, sha256, title, pages, tokens, state
        ("queued", "reading", "ready" or "failed"), reason (why it failed), done/total (tokens read so far while
        reading), added/updated (epoch seconds)."""
        return self.library_queue.items()

    def library_refresh(self) -> list[int]:
        """Queue again the documents whose file changed on disk; returns their ids."""
        before = {item["id"]: item["sha256"] for item in self.library_queue.items()}
        queued = self.library_queue.refresh()
        self._forget_replaced(before)
        return queued

    def library_remove(self, id_or_path: str | int) -> dict:
        """Remove a document (by id or path) from the library: its queue entry, and, when no other entry holds
        the same content, its passage index and cached states. Returns the removed entry."""
        item = self.library_queue.find(id_or_path)
        if item is None:
            raise DocFocusError(f"No document {id_or_path} in the library.", "See `docfocus library list`.")
        self.library_queue.remove(item["id"])
        if item["sha256"]:
            self._drop_content(item["sha256"])
        return item

    def _drop_content(self, sha256: str) -> None:
        """Forget a document's index and whole stored readings when no library entry holds it any more (its
        segments are shared by content and stay until the size cap evicts them)."""
        if self.library_queue.users(sha256):
            return
        self.passage_index.remove(sha256)
        if self.settings.store.use_cache:
            self.state_cache.clear(sha256)
        self._library_handles.pop(sha256, None)

    def library_read_next(self, progress: Progress | None = None,
                          should_stop: ShouldStop | None = None) -> dict | None:
        """Make the next queued document ready: ingest it (recognising scanned pages) and index its passages, which
        takes seconds (the model reads nothing: a question reads what it needs; with ``reading.ahead`` every
        segment is read too). Returns its entry afterwards (state "ready" or "failed" with the reason), or None
        when nothing is queued. Stopped by ``should_stop``, it goes back to the queue (recognised pages and
        segments read so far are kept) and CancelledError is raised; removed while it was read (state
        "removed"), nothing of it is kept."""
        queue = self.library_queue
        item = queue.next()
        if item is None:
            return None
        number = item["id"]
        queue.set_state(number, "reading")
        last = [0.0]

        def report(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or done >= total:
                last[0] = now
                queue.progress(number, done, total)
            if progress:
                progress(stage, done, total)
        try:
            ingested = self.ingest(item["path"], progress=report, should_stop=should_stop)
            doc = self.open_document(ingested)
            if self._index_document(doc) is None:
                raise DocFocusError("The document's passages could not be indexed (the library cannot be written).")
            if self.settings.reading.ahead:
                self.read(doc, report, should_stop)
                self.forget(doc)  # what was read is in the state cache; the library keeps no reading in memory
            if queue.get(number) is None:  # removed meanwhile (another process, the window): keep nothing of it
                self._drop_content(ingested.sha256)
                return {**item, "state": "removed"}
            queue.set_state(number, "ready", sha256=ingested.sha256, title=ingested.title or Path(item["path"]).stem,
                            pages=len(ingested.pages), tokens=doc.total_tokens, done=doc.total_tokens,
                            total=doc.total_tokens)
        except CancelledError:
            queue.set_state(number, "queued")
            raise
        except DocFocusError as error:
            queue.set_state(number, "failed", reason=error.user_message())
        except (OSError, sqlite3.Error, RuntimeError, ValueError) as error:  # one bad file never stops the queue
            log.exception("reading %s for the library failed", item["path"])
            queue.set_state(number, "failed", reason=f"{type(error).__name__}: {error}")
        return queue.get(number)

    def library_read_all(self, progress: Progress | None = None,
                         should_stop: ShouldStop | None = None) -> list[dict]:
        """Read every queued document (``library_read_next`` until the queue is empty); their entries."""
        done = []
        while (item := self.library_read_next(progress, should_stop)) is not None:
            done.append(item)
        return done

    # -- documents and states for library questions

    @property
    def _library_handles(self) -> dict[str, DocumentHandle]:
        if getattr(self, "_handles", None) is None:
            self._handles: dict[str, DocumentHandle] = {}
        return self._handles

    def library_handle(self, sha256: str) -> DocumentHandle:
        """A library document, opened from the library's copy (no PDF parsing); a few kept open."""
        handles = self._library_handles
        if sha256 not in handles:
            ingested = self.library.load(sha256)
            if ingested is None:
                raise DocFocusError("A document of the library is missing from its database; add it again.")
            while len(handles) >= 16:
                handles.pop(next(iter(handles)))
            handles[sha256] = self.open_document(ingested)
        return handles[sha256]

    def library_state(self, doc: DocumentHandle) -> LazyReading:
        """A library document's reading for a question: only the segments a question needs are loaded, or read
        (again, if they were evicted); the readings of the last few documents asked stay in memory."""
        kept = getattr(self, "_library_kept", None)
        if kept is None:
            kept = self._library_kept = []
        reading = self._readings.lazy(doc)
        if doc.sha256 in kept:
            kept.remove(doc.sha256)
        kept.append(doc.sha256)
        while len(kept) > LIBRARY_STATES_KEPT:
            self._readings.forget(kept.pop(0))
        return reading

    def ask_library(self, question: str, on_text: Callable[[str], None] | None = None,
                    should_stop: ShouldStop | None = None, progress: Progress | None = None,
                    max_new_tokens: int | None = None, documents: list[str] | None = None) -> Answer:
        """Answer ``question`` from the library's ready documents, as ``ask`` answers from one: the passage index
        ranks every passage of the scope, the best ones (from any documents) fill one context, and the answer's
        verdict, evidence, citations and highlights name their document and page. ``answer.document`` describes
        the scope ({"library": True, "documents", "tokens", "passages"}); ``documents`` (sha256s) narrows it."""
        question = check_question(question)
        loaded = self.load()
        settings = self.settings if not max_new_tokens else self.settings.changed(
            answer={"max_new_tokens": max_new_tokens})
        started = time.perf_counter()
        ready = {item["sha256"]: item for item in self.library_documents() if item["state"] == "ready"
                 and (documents is None or item["sha256"] in documents)}
        indexed = {sha: doc for sha, doc in self.passage_index.documents(self.index_key).items() if sha in ready}
        if not indexed:
            raise DocFocusError("The library has no document ready to answer from.",
                                "Add documents with `docfocus library add FILE_OR_FOLDER`.")
        scope = self.passage_index.search(question, list(indexed.values()))
        candidates = ranking_ops.Candidates.of_scope(scope, {sha: ready[sha]["tokens"] for sha in indexed},
                                                     self.library_handle)
        ranking = self.refine(ranking_ops.rank(candidates, scope.lexical, self.passage_index.weights(
            question, list(indexed.values()))), question)
        scope_info = {"library": True, "documents": len(indexed), "passages": len(scope),
                      "tokens": int(candidates.tokens.sum())}
        facts = story.Facts(scope_info, loaded.info(), {}, {"load_s": round(loaded.load_s, 3),
                            "rank_s": round(time.perf_counter() - started, 3)}, True, self.library.take_notices(),
                            started, library=True)
        budget = candidates.handle(int(np.argmax(ranking.score))).budget
        return self._answerer.over_passages(question, ranking, _Readings(self, candidates), settings.answer, facts,
                                            budget, on_text, should_stop, progress)


class _Readings:
    """Library documents' readings by sha256, opened as the answer's context asks for them."""

    def __init__(self, engine, candidates) -> None:
        self.engine, self.candidates, self.opened = engine, candidates, {}

    def __getitem__(self, sha256: str) -> LazyReading:
        if sha256 not in self.opened:
            number = self.candidates.shas.index(sha256)
            self.opened[sha256] = self.engine.library_state(self.candidates.handle_of(number))
        return self.opened[sha256]

    def values(self):
        return self.opened.values()
