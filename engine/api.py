"""The engine's one front door, used by the command line and the desktop app alike.

    engine = Engine(EngineSettings(model="bundled"))
    engine.load(progress)                      # model + tokenizer
    doc = engine.open_document("manual.pdf")   # ingest and index: no model reading, seconds for 100 pages
    answer = engine.ask(doc, "Who wrote it?", on_text=print)   # reads only the parts the question needs

A question ranks the document's passages (engine/retrieval/), reads or loads only the segments that hold the
chosen ones (engine/reading/), and answers from them (engine/answer/). ``read`` reads everything at once, for
whoever wants that done in the background. The library methods (``library_*``, ``ask_library``) come from
engine/library/service.py.

Every method runs synchronously; callers that must stay responsive (the GUI) run them in a worker thread and
pass ``should_stop`` to cancel.
"""
from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable

from . import paths
from .answer import story
from .answer.pipeline import Answerer
from .answer.result import Answer, Citation, Evidence, Highlight  # noqa: F401 - the public API
from .attention import contract
from .errors import DocFocusError, OutOfMemoryError, is_out_of_memory
from .ingest.extract import PROTECTED_CLEANED, IngestedDocument, file_sha256, ingest_pdf
from .ingest.formats import requires_password
from .library.documents import Library
from .library.service import LibraryMixin
from .model import generation, positions
from .model.loading import LoadedModel, load_model
from .model.prompt import ANSWER_RESERVE, QUESTION_RESERVE, build_layout, check_question, token_words
from .reading import segments
from .reading.documents import DocumentHandle
from .reading.readings import Readings
from .retrieval import likelihood, meaning
from .retrieval import ranking as ranking_ops
from .retrieval.index import PassageIndex, PassageVectors, TokenizerIndex, index_key
from .retrieval.passages import cut as cut_passages
from .settings import EngineSettings, SettingsError  # noqa: F401 - the public API
from .store.history import History
from .store.state_cache import StateCache, StateKey

log = logging.getLogger("docfocus")
Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
PASSAGE_TOKENS = 64  # the passage a document is cut into (engine/retrieval/passages.py)
FIXED_POSITIONS = ("This model cannot move passages next to the question, so it answered from the document as it "
                   "read it.")


class Engine(LibraryMixin):
    """Loads one model and answers questions about documents with it (and across a library)."""

    def __init__(self, settings: EngineSettings | None = None, library: Library | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._library = library
        self.loaded: LoadedModel | None = None
        self._state_cache: StateCache | None = None
        self._readings: Readings | None = None
        self._protected: set[str] = set()  # documents that need a password: nothing of them is written to disk

    @property
    def library(self) -> Library:
        if self._library is None:
            self._library = Library.or_in_memory()  # a library that cannot be written still answers (unsaved)
        return self._library

    def load(self, progress: Progress | None = None) -> LoadedModel:
        if self.loaded is None:
            self.loaded = load_model(self.settings.model, self.settings.device, self.settings.device_map, progress)
            self._answerer = Answerer(self.loaded, generation.stop_token_ids(self.loaded.tokenizer,
                                                                             self.loaded.model))
            self._readings = Readings(self.loaded, lambda: self.settings, lambda: self.state_cache, self._keeps)
            contract.enable(self.loaded.model)  # plain SDPA unless a forward pass carries an AttentionRun
        return self.loaded

    def ingest(self, path: str | Path, password: str | None = None, progress: Progress | None = None,
               should_stop: ShouldStop | None = None, pdf_lock=None) -> IngestedDocument:
        """Pages, words and text of a document: the library's copy, or read from the file (and saved).

        Scanned pages are recognised (OCR, progress stage ``engine.ingest.extract.OCR_STAGE``, page by page,
        cancelled by ``should_stop``); recognised pages are kept in the library, so none is recognised twice. A
        library copy whose OCR used another language setting, or had failed pages, is read again (only those
        pages are recognised). This is the only step that parses the file: a caller that shares PyMuPDF with a
        viewer passes the viewer's lock as ``pdf_lock``, held while PyMuPDF runs but not while OCR models do."""
        ingested = None
        language = self.settings.ocr_language
        if Path(path).is_file():
            sha256 = file_sha256(path)
            if self.library.get_row(sha256) is not None and requires_password(path, pdf_lock):
                self._forget_protected(sha256)  # kept in clear by an older DocFocus: read with the password
            elif password is None:
                ingested = self.library.load(sha256)
            ocr = ingested.report.ocr if ingested is not None else None
            if ocr is not None and (ocr.failed or ocr.languages != language):
                ingested = None
        if ingested is None:
            ingested = ingest_pdf(path, password, ocr_language=language, ocr_store=self.library, progress=progress,
                                  should_stop=should_stop, pdf_lock=pdf_lock)
            if not ingested.protected:  # nothing of a document that needs a password is kept (README, privacy)
                self.library.save(ingested)
        return ingested

    def _forget_protected(self, sha256: str) -> None:
        """Delete what an older DocFocus kept in clear of a document that needs a password: its text, pages,
        words, recognised pages, passages and stored reading (its chat history stays: it is the user's)."""
        found = self.library.forget_copy(sha256)
        try:
            found = self.passage_index.remove(sha256) > 0 or found
        except sqlite3.Error as error:
            log.info("could not remove an encrypted document from the passage index: %s", error)
        if self.settings.store.use_cache:
            found = self.state_cache.clear(sha256)[0] > 0 or found
        if found:
            self.library.notices.append(PROTECTED_CLEANED)

    def _keeps(self, sha256: str) -> bool:
        """Whether anything derived from this document may be written to disk (not for one that needs a password)."""
        return sha256 not in self._protected

    def open_document(self, source: str | Path | IngestedDocument, password: str | None = None) -> DocumentHandle:
        """Ingest (a path), lay out the prompt, cut the passages and index them: ready for questions. The model
        reads nothing here; a question reads what it needs."""
        loaded = self.load()
        ingested = source if isinstance(source, IngestedDocument) else self.ingest(source, password)
        if ingested.protected:
            self._protected.add(ingested.sha256)
        layout = build_layout(loaded.tokenizer, ingested)
        budget = loaded.window - len(layout.head_ids) - QUESTION_RESERVE - ANSWER_RESERVE
        passages = cut_passages(ingested, layout.doc_offsets, PASSAGE_TOKENS)
        segmenting = self._segmenting(budget)
        total = len(layout.doc_ids)
        truncate = segmenting is None or self.settings.reading.long_documents == "truncate"
        used = max(1, min(total, budget)) if truncate else total
        bounds = (segments.segment_bounds(layout.doc_ids[:used], segmenting.segment, passages.start)
                  if segmenting is not None else [(0, used)])
        handle = DocumentHandle(ingested, layout, token_words(ingested, layout.doc_offsets), passages, used,
                                loaded.window, budget, segmenting, bounds)
        self._index_document(handle)
        return handle

    def _segmenting(self, budget: int) -> segments.Segmenting | None:
        """How this model reads a document in segments, or None where it cannot (no re-positionable RoPE keys, or
        a window too small for segments): segments shrink to fit a small window."""
        reading = self.settings.reading
        try:
            positions.rotary_positions(self.load().model)
        except DocFocusError as error:
            log.warning("%s Reading what fits the window instead.", error)
            return None
        overlap = min(reading.overlap, budget // 8)
        segment = min(reading.segment, (budget - overlap) * 2 // 3)
        return segments.Segmenting(segment, overlap) if segment >= 64 else None

    def read(self, doc: DocumentHandle, progress: Progress | None = None,
             should_stop: ShouldStop | None = None) -> float:
        """Read all of the document now (what a question would otherwise read when it needs it): every segment
        not stored yet, or the whole reading where the document is answered whole. Returns seconds spent."""
        self.load()
        if self._answers_whole(doc, self.settings):
            return self._readings.whole(doc, progress, should_stop)[1]
        started = time.perf_counter()
        report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
        read = self._readings.lazy(doc).read_missing(report, should_stop)
        return time.perf_counter() - started if read else 0.0

    @staticmethod
    def _answers_whole(doc: DocumentHandle, settings: EngineSettings) -> bool:
        """Whether an answer attends to the whole document: asked for and it fits, or the model cannot move
        positions (it then reads what fits)."""
        return doc.segmenting is None or (settings.answer.context == "document" and doc.fits)

    def ask(self, doc: DocumentHandle, question: str, on_text: Callable[[str], None] | None = None,
            should_stop: ShouldStop | None = None, progress: Progress | None = None,
            max_new_tokens: int | None = None) -> Answer:
        """Answer ``question`` from ``doc``, streaming text pieces to ``on_text`` (engine/answer/pipeline.py)."""
        question = check_question(question)
        loaded = self.load()
        settings = self.settings if not max_new_tokens else self.settings.changed(
            answer={"max_new_tokens": max_new_tokens})
        facts = story.Facts(doc.info(), loaded.info(), {}, {"load_s": round(loaded.load_s, 3)}, True,
                            [doc.notice(), *self.library.take_notices()])
        ranking = self.rank(doc, question)
        facts.timings["rank_s"] = round(time.perf_counter() - facts.started, 3)
        if self._answers_whole(doc, settings):
            if doc.segmenting is None and settings.answer.context == "passages":
                facts.notices.append(FIXED_POSITIONS)
            state, read_s = self._readings.whole(doc, progress, should_stop)
            facts.timings.update(prefill_s=round(read_s, 3), restore_s=round(state.restore_s, 3),
                                 store_s=round(state.store_s, 3), state_from=state.source)
            facts.cache_hit = state.source != "prefill"
            facts.notices += self._readings.take_notices()
            answer = self._answerer.over_document(question, ranking, state, settings.attention, settings.answer,
                                                  facts, on_text, should_stop, progress)
        else:
            answer = self._answerer.over_passages(question, ranking, {doc.sha256: self._readings.lazy(doc)},
                                                  settings.answer, facts, doc.budget, on_text, should_stop, progress)
        return self._record(answer, settings)

    @property
    def readings(self) -> Readings:
        """The model's readings of the documents this engine opened (engine/reading/readings.py)."""
        self.load()
        return self._readings

    def rank(self, doc: DocumentHandle, question: str) -> ranking_ops.Ranking:
        """One document's passages ranked for ``question`` (engine/retrieval/ranking.py, meaning.py)."""
        candidates = ranking_ops.Candidates.of_document(doc)
        lexical, weights = ranking_ops.word_match(candidates, question, self._tokenizer_index())
        return self.refine(ranking_ops.rank(candidates, lexical, weights), question)

    def refine(self, ranking: ranking_ops.Ranking, question: str) -> ranking_ops.Ranking:
        """The word match's ranking, its best passages re-ranked by meaning (where on and the embedder installed),
        then the very best checked by the model (where on): how likely the question is after each of them."""
        if self.settings.answer.meaning and self.embedder() is not None:
            ranking = meaning.rerank(ranking, question, self._embedder, self.passage_vectors)
        if self.settings.answer.model_check:
            loaded = self.load()
            try:
                ranking = likelihood.rerank(ranking, question, loaded.model, loaded.tokenizer)
            except (RuntimeError, TypeError, ValueError) as error:
                if is_out_of_memory(error):
                    raise OutOfMemoryError("checking the best passages") from error
                log.warning("the model's check of the passages failed (%s); ranked without it", error)
        return ranking

    def embedder(self) -> meaning.Embedder | None:
        """The sentence embedder, loaded once (None when its package is not installed)."""
        if getattr(self, "_embedder", False) is False:
            self._embedder = meaning.Embedder.load()
        return self._embedder

    @property
    def passage_vectors(self) -> PassageVectors:
        """The passages' meaning vectors, computed when first asked for and kept in the index database."""
        if getattr(self, "_vectors", None) is None:
            self._vectors = PassageVectors(self.library.db, self.index_key, self._keeps)
        return self._vectors

    # ---- the passage index (engine/retrieval/index.py)

    @property
    def passage_index(self) -> PassageIndex:
        """The passage index in the library database."""
        if getattr(self, "_passage_index", None) is None or self._passage_index.db is not self.library.db:
            self._passage_index = PassageIndex(self.library.db)
        return self._passage_index

    @property
    def index_key(self) -> str:
        """Whose passages the index holds: this model's tokenizer and this version of the term keys."""
        return index_key(self.load().id)

    def _tokenizer_index(self) -> TokenizerIndex | None:
        try:
            return TokenizerIndex(self.passage_index, self.index_key)
        except sqlite3.Error:
            return None

    def _index_document(self, doc: DocumentHandle) -> int | None:
        """Put ``doc``'s passages in the passage index (once per tokenizer); its index id, None if it cannot."""
        tokenizer = self.index_key
        if not self._keeps(doc.sha256):
            return None
        try:
            found = self.passage_index.doc_id(doc.sha256, tokenizer)
            return found if found is not None else self.passage_index.add(doc.ingested, doc.passages, tokenizer,
                                                                          doc.total_tokens)
        except sqlite3.Error as error:  # the index is an accelerator: the document's own passages still rank
            log.warning("could not index %s: %s", doc.ingested.path, error)
            return None

    # ---- stored readings and history (engine/store/)

    @property
    def state_cache(self) -> StateCache:
        """The document state cache, in ``states.sqlite`` beside the library database."""
        if self._state_cache is None:
            rows = self.library.db.execute("PRAGMA database_list").fetchall()
            main = next((row[2] for row in rows if row[1] == "main" and row[2]), None)
            folder = Path(main).parent if main else paths.data_dir()
            self._state_cache = StateCache(folder / "states.sqlite", self.settings.store.cache_cap_bytes)
        return self._state_cache

    def storage(self) -> dict:
        """The space stored readings take: ``used_bytes``, ``cap_bytes`` and ``readings`` (entries)."""
        cache = self.state_cache
        return {"used_bytes": cache.used_bytes(), "cap_bytes": int(self.settings.store.cache_cap_bytes),
                "readings": len(cache.entries())}

    def state_key(self, doc: DocumentHandle, ids: list[int] | None = None) -> StateKey:
        """What identifies ``doc``'s stored whole reading for this model and these settings."""
        self.load()
        return self._readings.state_key(doc, ids)

    def forget(self, doc: DocumentHandle) -> None:
        """Drop this engine's in-memory readings of a document (the next question loads or reads them again)."""
        if self._readings is not None:
            self._readings.forget(doc.sha256)

    def history(self, sha256: str) -> list[dict]:
        """Recorded answers about a document, oldest first: id, question, answer, evidence (list of
        {page, text, score, boxes}), token_scores ((L,) float32 or None), attention, created (epoch), ..."""
        return History(self.library.db).entries(sha256)

    def clear_history(self, sha256: str) -> int:
        """Forget a document's chat history; returns the number of answers removed."""
        return History(self.library.db).clear(sha256)

    def _record(self, answer: Answer, settings: EngineSettings) -> Answer:
        """Keep the answer in its document's chat history (never at the cost of the answer)."""
        if (answer.stopped and not answer.answer) or not self._keeps(answer.document["sha256"]):
            return answer
        used = {"answer": dataclasses.asdict(settings.answer), "attention": dataclasses.asdict(settings.attention),
                "cache_format": settings.store.cache_format}
        try:
            History(self.library.db).record(answer, used)
        except sqlite3.Error as error:  # history must never cost the user the answer; it is said, with it
            log.info("could not record the answer in the history: %s", error)
            answer.notices.append(f"This answer was not saved in the chat history ({error}).")
        return answer
