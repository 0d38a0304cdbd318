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

from ..answer.result import Answer
from ..errors import CancelledError, DocFocusError
from ..ingest.formats import SUFFIXES
from ..reading.documents import DocumentHandle, DocumentState
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
        if item["sha256"] and not self.library_queue.users(item["sha256"]):
            self.passage_index.remove(item["sha256"])
            if self.settings.store.use_cache:
                self.state_cache.clear(item["sha256"])  # a long document's segments are shared by content and
            self._library_handles.pop(item["sha256"], None)  # stay until the size cap evicts them
        return item

    def library_read_next(self, progress: Progress | None = None,
                          should_stop: ShouldStop | None = None) -> dict | None:
        """Read the next queued document (ingest, read and store its state, index its passages); returns its
        entry afterwards (state "ready" or "failed" with the reason), or None when nothing is queued. Stopped
        by ``should_stop``, it goes back to the queue and CancelledError is raised."""
        queue = self.library_queue
        item = queue.next()
        if item is None:
            return None
        number = item["id"]
        queue.set_state(number, "reading")
        last = [0.0]

        def report(stage: str, done: int, total: int) -> None:
            now = time.monotonic()
            if stage == "Reading the document" and (now - last[0] >= PROGRESS_EVERY_S or done >= total):
                last[0] = now
                queue.progress(number, done, total)
            if progress:
                progress(stage, done, total)
        try:
            ingested = self.ingest(item["path"], progress=report, should_stop=should_stop)
            doc = self.open_document(ingested)
            self.read(doc, report, should_stop)
            if self._index_document(doc) is None:
                raise DocFocusError("The document's passages could not be indexed (the library cannot be written).")
            self.forget(doc)  # the state is in the cache; the library keeps no document in memory
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

    def library_state(self, doc: DocumentHandle, should_stop: ShouldStop | None = None) -> DocumentState:
        """A library document's state for a question: a long one lazily (only the segments a question needs are
        loaded, or read again if evicted), a short one restored whole (or read again)."""
        kept = getattr(self, "_library_kept", None)
        if kept is None:
            kept = self._library_kept = []
        if doc.method == "select":
            state = self._states.get(doc.state_id)
            if state is None:
                state, _ = self._read_segments(doc, None, should_stop, read_missing=False)
        else:
            state, _ = self.read(doc, None, should_stop)
        if doc.sha256 in kept:
            kept.remove(doc.sha256)
        kept.append(doc.sha256)
        while len(kept) > LIBRARY_STATES_KEPT:
            old = kept.pop(0)
            if old in self._library_handles:
                self.forget(self._library_handles[old])
        return state

    def ask_library(self, question: str, on_text: Callable[[str], None] | None = None,
                    should_stop: ShouldStop | None = None, progress: Progress | None = None,
                    max_new_tokens: int | None = None, documents: list[str] | None = None) -> Answer:
        """Answer ``question`` from the library's ready documents (engine/library/answer.py): BM25 over every
        passage of the library ranks them, the best ones (from any documents) fill one compacted context, and the
        answer, its support verdict, evidence, citations and highlights name their document and page.
        ``answer.document`` describes the scope ({"library": True, "documents", "tokens", "passages"}).
        ``documents`` (sha256s) narrows the scope to those documents (e.g. the one in view)."""
        from .answer import answer_library

        return answer_library(self, question, on_text, should_stop, progress,
                              max_new_tokens or self.settings.answer.max_new_tokens, documents)
