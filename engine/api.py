"""The engine's small public API, used by the command line and the desktop app.

    engine = Engine(EngineSettings(model="bundled"))
    engine.load(progress)                      # model + tokenizer
    doc = engine.open_document("manual.pdf")   # ingest (or the library's copy)
    answer = engine.ask(doc, "Who wrote it?", on_text=print)

Every method runs synchronously; callers that must stay responsive (the GUI)
run them in a worker thread and pass ``should_stop`` to cancel.
"""
from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from pathlib import Path
from typing import Callable

import torch

from . import paths
from .answer.pipeline import Answerer
from .answer.result import Answer, Citation, Evidence, Highlight  # noqa: F401 - the public API
from .attention import contract as attention
from .attention import dga_prefill
from .errors import DocFocusError
from .ingest.extract import IngestedDocument, file_sha256, ingest_pdf
from .library.documents import Library
from .library.service import LibraryMixin
from .model import generation, positions
from .model.loading import LoadedModel, load_model
from .model.prompt import PromptLayout, build_layout, token_words
from .reading import segments
from .reading.documents import DocumentHandle, DocumentState
from .reading.lazy import LazyReading, SegmentSource
from .retrieval.index import DocumentIndex, PassageIndex
from .retrieval.passages import cut as cut_passages
from .settings import EngineSettings, SettingsError  # noqa: F401 - the public API
from .store.history import History
from .store.state_cache import FORMATS, StateCache, StateKey, StateTooLarge, dtype_name, layout_hash

log = logging.getLogger("docfocus")
Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
# Tokens kept free after the document: the question plus the longest answer.
QUESTION_RESERVE = 128
ANSWER_RESERVE = 384
PASSAGE_TOKENS = 64  # the passage a document is cut into for relevance (engine/retrieval/passages.py)
READ_CHUNK = 256  # tokens per forward pass when reading: a Stop is heard between two of them


class Engine(LibraryMixin):
    """Loads one model and answers questions about documents with it (and across a library: the ``library_*``
    methods and ``ask_library``, engine/library/service.py)."""

    def __init__(self, settings: EngineSettings | None = None, library: Library | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._library = library
        self.loaded: LoadedModel | None = None
        self._states: dict[str, DocumentState] = {}
        self._state_cache: StateCache | None = None
        self._pending_notice: str | None = None  # a cache problem found while restoring, told with the answer

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
            attention.enable(self.loaded.model)  # plain SDPA unless a forward pass carries an AttentionRun
        return self.loaded

    def ingest(self, path: str | Path, password: str | None = None, progress: Progress | None = None,
               should_stop: ShouldStop | None = None, pdf_lock=None) -> IngestedDocument:
        """Pages, words and text of a document: the library's copy, or read from the file (and saved).

        Scanned pages are recognised (OCR, progress stage ``ingest.OCR_STAGE``, page by page, cancelled by
        ``should_stop``); recognised pages are kept in the library, so none is recognised twice. A library copy
        whose OCR used another language setting, or had failed pages, is read again (only those pages are
        recognised). This is the only step that parses the file: a caller that shares PyMuPDF with a viewer passes
        the viewer's lock as ``pdf_lock``, held while PyMuPDF runs but not while the OCR models do."""
        ingested = None
        language = self.settings.ocr_language
        if Path(path).is_file():
            ingested = self.library.load(file_sha256(path)) if password is None else None
            ocr = ingested.report.ocr if ingested is not None else None
            if ocr is not None and (ocr.failed or ocr.languages != language):
                ingested = None
        if ingested is None:
            ingested = ingest_pdf(path, password, ocr_language=language, ocr_store=self.library, progress=progress,
                                  should_stop=should_stop, pdf_lock=pdf_lock)
            self.library.save(ingested)
        return ingested

    def open_document(self, source: str | Path | IngestedDocument, password: str | None = None) -> DocumentHandle:
        """Lay out the prompt of a document and cut it into passages (a path is ingested first, see ``ingest``)."""
        loaded = self.load()
        ingested = source if isinstance(source, IngestedDocument) else self.ingest(source, password)
        layout = build_layout(loaded.tokenizer, ingested)
        budget = self._document_budget(layout)
        used = max(1, min(len(layout.doc_ids), budget))
        handle = DocumentHandle(ingested, layout, token_words(ingested, layout.doc_offsets),
                                cut_passages(ingested, layout.doc_offsets, PASSAGE_TOKENS), used, loaded.window)
        if used < len(layout.doc_ids):
            reading = self._reading_settings(budget) if self.settings.reading.long_documents == "select" else None
            if reading is not None:
                handle.method, handle.used_tokens = "select", len(layout.doc_ids)
                handle.segment, handle.overlap = reading.segment, reading.overlap
                handle.segments = len(segments.segment_bounds(layout.doc_ids, reading.segment))
            else:
                handle.method = "truncate"
        return handle

    def _document_budget(self, layout: PromptLayout) -> int:
        """Document tokens that fit the window with room for the question and the answer."""
        return self.load().window - len(layout.head_ids) - QUESTION_RESERVE - ANSWER_RESERVE

    def _reading_settings(self, budget: int) -> segments.Segmenting | None:
        """How to read past the window with this model, or None where it cannot (no re-positionable RoPE keys,
        or a window too small for segments): segments shrink to fit a small window."""
        reading = self.settings.reading
        try:
            positions.rotary_positions(self.load().model)
        except DocFocusError as error:
            log.warning("%s Falling back to truncation.", error)
            return None
        overlap = min(reading.overlap, budget // 8)
        segment = min(reading.segment, (budget - overlap) * 2 // 3)
        return segments.Segmenting(segment, overlap) if segment >= 64 else None

    def _doc_reading(self, doc: DocumentHandle) -> segments.Segmenting:
        """The reading fixed when ``doc`` was opened (method "select")."""
        return segments.Segmenting(doc.segment, doc.overlap)

    def _prefill_settings(self) -> dga_prefill.PrefillSettings | None:
        """Prefill-time DGA settings, or None for dense prefill."""
        return None if self.settings.reading.prefill == "dense" else self.settings.reading.prefill_dga

    def read(self, doc: DocumentHandle, progress: Progress | None = None,
             should_stop: ShouldStop | None = None) -> tuple[DocumentState, float]:
        """The document's state, computing it if this engine has not read it yet; returns (state, seconds spent)."""
        state = self._states.get(doc.state_id)
        if state is not None:
            state.source, state.restore_s, state.store_s = "memory", 0.0, 0.0
            return state, 0.0
        if doc.method == "select":
            return self._read_segments(doc, progress, should_stop)
        loaded = self.load()
        ids = doc.prefix_ids()
        state = self._restore_state(doc, ids)  # the state cache first: no prefill at all on a hit
        if state is not None:
            self._states[doc.state_id] = state
            return state, 0.0
        started = time.perf_counter()
        report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
        if report:
            report(0, doc.used_tokens)
        cache = generation.new_cache(loaded.model.config)
        prefill = self._prefill_settings()
        if prefill is None:
            logits = generation.prefill(loaded.model, ids, cache, progress=_minus(report, len(doc.layout.head_ids)),
                                        should_stop=should_stop, chunk_size=READ_CHUNK)
        else:
            logits = dga_prefill.prefill_dga(loaded.model, ids, cache, prefill, doc_start=doc.layout.doc_start,
                                             progress=_minus(report, len(doc.layout.head_ids)),
                                             should_stop=should_stop)
        state = self._whole_state(doc, cache, len(ids), logits)
        prefill_s = time.perf_counter() - started
        self._store_state(doc, ids, state)
        self._states[doc.state_id] = state
        return state, prefill_s

    def _read_segments(self, doc: DocumentHandle, progress: Progress | None, should_stop: ShouldStop | None,
                       read_missing: bool = True) -> tuple[DocumentState, float]:
        """A long document's state as a ``LazyReading`` (engine/reading/lazy.py): its segments are stored one by
        one in the state cache and loaded only where a question needs them. With ``read_missing`` every segment
        not stored yet is read now (and stored as soon as it is read, so an interrupted reading resumes); the
        document is also put in the passage index. Returns (state, seconds spent reading)."""
        started = time.perf_counter()
        lazy = self._lazy_reading(doc)
        restore_s = time.perf_counter() - started
        read = 0
        if read_missing:
            report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
            read = lazy.read_missing(report, should_stop)
            self._index_document(doc)
        state = DocumentState(doc.sha256, None, lazy, len(doc.layout.head_ids) + doc.total_tokens, torch.zeros(1),
                              source="prefill" if read else "disk", restore_s=restore_s)
        notices = [self._pending_notice, *lazy.source.notices, *(self.state_cache.take_notices()
                                                                 if self.settings.store.use_cache else [])]
        lazy.source.notices.clear()
        self._pending_notice = None
        state.cache_notice = " ".join(dict.fromkeys(filter(None, notices))) or None
        self._states[doc.state_id] = state
        return state, (time.perf_counter() - started - restore_s) if read else 0.0

    def _lazy_reading(self, doc: DocumentHandle) -> LazyReading:
        loaded = self.load()
        layers = len(getattr(loaded.model.config, "layer_types", None) or []) or loaded.model.config.num_hidden_layers
        base = self.state_key(doc, doc.layout.head_ids)

        def key(kind: str, tag: str, tokens: int) -> StateKey:  # by content: identical segments are shared
            return dataclasses.replace(base, sha256=f"{kind}:{tag}", prefix_tokens=tokens, layout_hash=tag,
                                       variant=f"{base.variant};{kind}")
        source = SegmentSource(loaded.model, self.state_cache if self.settings.store.use_cache else None, key,
                               loaded.dtype, _layer_devices(loaded.model, layers), doc.ingested.title,
                               doc.ingested.path)
        return LazyReading(source, doc.layout.head_ids, doc.layout.doc_ids, self._doc_reading(doc))

    @property
    def passage_index(self) -> PassageIndex:
        """The passage index (engine/retrieval/index.py) in the library database."""
        if getattr(self, "_passage_index", None) is None or self._passage_index.db is not self.library.db:
            self._passage_index = PassageIndex(self.library.db)
        return self._passage_index

    def _index_document(self, doc: DocumentHandle) -> int | None:
        """Put ``doc``'s passages in the passage index (once per tokenizer); its index id, None if it cannot."""
        tokenizer = self.load().id
        try:
            found = self.passage_index.doc_id(doc.sha256, tokenizer)
            return found if found is not None else self.passage_index.add(doc.ingested, doc.passages, tokenizer,
                                                                          doc.total_tokens)
        except sqlite3.Error as error:  # the index is an accelerator: the document's own passages still rank
            log.warning("could not index %s: %s", doc.ingested.path, error)
            return None

    def _doc_index(self, doc: DocumentHandle) -> DocumentIndex | None:
        """The passage index's scope of one long document (its BM25 without counting its words again)."""
        if doc.method != "select":
            return None
        try:
            found = self.passage_index.doc_id(doc.sha256, self.load().id)
        except sqlite3.Error:
            return None
        return DocumentIndex(self.passage_index, found) if found is not None else None

    @staticmethod
    def _whole_state(doc: DocumentHandle, cache, prefix_len: int, logits, **extra) -> DocumentState:
        head = len(doc.layout.head_ids)
        return DocumentState(doc.sha256, cache, segments.Reading.of_cache(cache, head, prefix_len - head), prefix_len,
                             logits, **extra)

    # ---- state cache and history (engine/store/state_cache.py, engine/store/history.py)

    @property
    def state_cache(self) -> StateCache:
        """The document state cache, in ``states.sqlite`` beside the library database."""
        if self._state_cache is None:
            rows = self.library.db.execute("PRAGMA database_list").fetchall()
            main = next((row[2] for row in rows if row[1] == "main" and row[2]), None)
            folder = Path(main).parent if main else paths.data_dir()
            self._state_cache = StateCache(folder / "states.sqlite", self.settings.store.cache_cap_bytes)
        return self._state_cache

    def state_key(self, doc: DocumentHandle, ids: list[int] | None = None) -> StateKey:
        """What identifies ``doc``'s stored state for this model and these settings."""
        import transformers

        loaded = self.load()
        ids = doc.prefix_ids() if ids is None else ids
        storage = self.settings.store.cache_format
        if storage not in FORMATS:
            raise DocFocusError(f"Unknown cache format {storage!r}; use one of {', '.join(FORMATS)}.")
        # How the state was read is part of the key: other reading settings give other tensors.
        version = ".".join(transformers.__version__.split(".")[:2])
        if doc.method == "select":
            reading = self._doc_reading(doc).reading_key()
        else:
            prefill = self._prefill_settings()
            reading = "prefill=dense" if prefill is None else f"prefill={prefill.tag()}"
        return StateKey(doc.sha256, loaded.id, loaded.revision, dtype_name(loaded.dtype), len(ids),
                        layout_hash(ids), storage, f"{reading};transformers={version}")

    def _restore_state(self, doc: DocumentHandle, ids: list[int]) -> DocumentState | None:
        if not self.settings.store.use_cache:
            return None
        loaded = self.load()
        started = time.perf_counter()
        layers = len(getattr(loaded.model.config, "layer_types", None) or []) or loaded.model.config.num_hidden_layers
        devices = _layer_devices(loaded.model, layers)
        restored = self.state_cache.load(self.state_key(doc, ids), loaded.dtype, devices)
        notice = " ".join(self.state_cache.take_notices()) or None
        if restored is None:
            self._pending_notice = notice
            return None
        cache = generation.new_cache(loaded.model.config)
        for layer, (keys, values) in enumerate(restored.layers):
            cache.update(keys, values, layer)  # (1, H_kv, L, D) each
        return self._whole_state(doc, cache, len(ids), restored.last_logits, source="disk",
                                 restore_s=time.perf_counter() - started, cache_notice=notice)

    def _store_state(self, doc: DocumentHandle, ids: list[int], state: DocumentState) -> None:
        """Save a freshly read state; a state that cannot be saved is answered from anyway, said once."""
        notice, self._pending_notice = self._pending_notice, None
        if self.settings.store.use_cache:
            started = time.perf_counter()
            layers = [(layer.keys, layer.values) for layer in state.cache.layers]
            self.state_cache.cap_bytes = self.settings.store.cache_cap_bytes  # the user may have changed it
            try:
                self.state_cache.store(self.state_key(doc, ids), layers, state.last_logits,
                                       title=doc.ingested.title, path=doc.ingested.path)
            except StateTooLarge as error:
                notice = " ".join(filter(None, [notice, str(error)]))
            state.store_s = time.perf_counter() - started
            notice = " ".join(filter(None, [notice, *self.state_cache.take_notices()])) or None
        state.cache_notice = notice

    def history(self, sha256: str) -> list[dict]:
        """Recorded answers about a document, oldest first: id, question, answer, evidence (list of
        {page, text, score, boxes}), token_scores ((L,) float32 or None), attention, created (epoch), ..."""
        return History(self.library.db).entries(sha256)

    def clear_history(self, sha256: str) -> int:
        """Forget a document's chat history; returns the number of answers removed."""
        return History(self.library.db).clear(sha256)

    def _finish_answer(self, answer: Answer, state: DocumentState, max_new_tokens: int) -> Answer:
        """Cache facts into the answer (said once) and record it in the document's history."""
        answer.cache_hit = state.source != "prefill"
        answer.timings["restore_s"] = round(state.restore_s, 3)
        answer.timings["store_s"] = round(state.store_s, 3)
        answer.timings["state_from"] = state.source
        notices = [state.cache_notice, *self.library.take_notices()]  # each said once
        if any(notices):
            answer.notice = " ".join(filter(None, [answer.notice, *notices]))
            state.cache_notice = None
        if answer.stopped and not answer.answer:
            return answer
        settings = {"answer": {**dataclasses.asdict(self.settings.answer), "max_new_tokens": max_new_tokens},
                    "attention": dataclasses.asdict(self.settings.attention),
                    "cache_format": self.settings.store.cache_format}
        try:
            History(self.library.db).record(answer, settings)
        except sqlite3.Error as error:  # history must never cost the user the answer
            log.warning("could not record the answer in the history: %s", error)
        return answer

    def forget(self, doc: DocumentHandle) -> None:
        """Drop this engine's in-memory state of a document (the next question reads or restores it again)."""
        for key in [key for key in self._states if key.split(":")[0] == doc.sha256]:
            del self._states[key]

    def forget_question_scores(self) -> None:
        """Drop the kept attention of earlier questions (a benchmark timing each approach's own pass uses it)."""
        answerer = getattr(self, "_answerer", None)  # made when the model loads
        if answerer is not None:
            answerer.forget_scores()

    def ask(self, doc: DocumentHandle, question: str, on_text: Callable[[str], None] | None = None,
            should_stop: ShouldStop | None = None, progress: Progress | None = None,
            max_new_tokens: int | None = None) -> Answer:
        """Answer ``question`` from ``doc``, streaming text pieces to ``on_text`` (engine/answer/pipeline.py)."""
        loaded = self.load()
        started = time.perf_counter()
        state, prefill_s = self.read(doc, progress, should_stop)
        limit = max_new_tokens or self.settings.answer.max_new_tokens
        answer, timings = self._answerer.ask(doc, state, question, self.settings, limit,
                                             self._document_budget(doc.layout), on_text, should_stop, progress,
                                             started, index=self._doc_index(doc))
        answer.timings = {"load_s": round(loaded.load_s, 3), "prefill_s": round(prefill_s, 3), **timings,
                          "total_s": round(time.perf_counter() - started, 3)}
        return self._finish_answer(answer, state, limit)


def _minus(report, head: int):
    """A document-token progress report for a prefill that counts the chat head too."""
    if report is None:
        return None
    return lambda done, total: report(max(0, done - head), total - head)


def _layer_devices(model, layers: int) -> list[torch.device]:
    """The device of each decoder layer (``device_map="auto"`` may spread them over several GPUs)."""
    default = next(model.parameters()).device
    try:
        decoder_layers = model.get_decoder().layers
        return [next(decoder_layers[i].parameters()).device for i in range(layers)]
    except (AttributeError, IndexError, StopIteration, TypeError):
        return [default] * layers
