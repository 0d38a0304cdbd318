"""The engine's small public API, used by the command line and the desktop app.

    engine = Engine(EngineSettings(model="bundled"))
    engine.load(progress)                      # model + tokenizer
    doc = engine.open_document("manual.pdf")   # ingest (or the library's copy)
    answer = engine.ask(doc, "Who wrote it?", on_text=print)

Every method runs synchronously; callers that must stay responsive (the GUI)
run them in a worker thread and pass ``should_stop`` to cancel.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import dga, dga_prefill, generation, longdoc, paths, relevance, support
from .answer import Answer, Citation, Evidence, Highlight  # noqa: F401 - the public API
from .errors import DocFocusError
from .history import History
from .state_cache import FORMATS, StateCache, StateKey, StateTooLarge, dtype_name, layout_hash
from .ingest import IngestedDocument, file_sha256, ingest_pdf
from .library import Library
from .models import LoadedModel, load_model
from .settings import EngineSettings, SettingsError  # noqa: F401 - the public API
from . import strategies
from .prompt import PromptLayout, build_layout, question_ids, token_words

log = logging.getLogger("docfocus")
Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
# Tokens kept free after the document: the question plus the longest answer.
QUESTION_RESERVE = 128
ANSWER_RESERVE = 384


@dataclass
class DocumentHandle:
    """An opened document: ingest result, prompt layout and the part that fits the window."""

    ingested: IngestedDocument
    layout: PromptLayout
    token_word: np.ndarray  # (L,) word index per document token, -1 for none
    used_tokens: int  # document tokens given to the model
    window: int
    method: str = "whole"  # "whole" (fits the window), "select" (read whole, selected per question), "truncate"
    segments: int = 1  # segments read (method "select")
    focal_tokens: int = 0  # document tokens each answer sees exactly (method "select")
    grouped: bool = False  # whether the other tokens are folded into groups (method "select")
    segment: int = 0  # segment and overlap lengths the document is read with (method "select")
    overlap: int = 0

    @property
    def sha256(self) -> str:
        return self.ingested.sha256

    @property
    def total_tokens(self) -> int:
        return len(self.layout.doc_ids)

    @property
    def truncated(self) -> bool:
        return self.used_tokens < self.total_tokens

    @property
    def pages_used(self) -> int:
        """1-based number of the last page (partly) given to the model."""
        if not self.truncated:
            return len(self.ingested.pages)
        last_char = int(self.layout.doc_offsets[self.used_tokens - 1, 1])
        return self.ingested.page_of_char(last_char) + 1

    def prefix_ids(self) -> list[int]:
        return self.layout.head_ids + self.layout.doc_ids[: self.used_tokens].tolist()

    def notice(self) -> str | None:
        """Plain sentences for the user: how the document was read (OCR, repair), and what happens when it
        does not fit the model's window."""
        return " ".join(filter(None, [self.ingested.notice(), self._window_notice()])) or None

    def _window_notice(self) -> str | None:
        if self.method == "select":
            return (f"This document is {self.total_tokens:,} tokens long, longer than the model's window of "
                    f"{self.window:,} tokens. DocFocus reads all of it ({self.segments} segments) and answers "
                    f"each question from the passages that match it best (about {self.focal_tokens:,} tokens"
                    + (", the rest folded into groups)." if self.grouped else ")."))
        if not self.truncated:
            return None
        return (f"This document is {self.total_tokens:,} tokens long but the model's window is "
                f"{self.window:,} tokens; answers use pages 1-{self.pages_used} of "
                f"{len(self.ingested.pages)} (the first {self.used_tokens:,} tokens).")

    def info(self) -> dict:
        return {"sha256": self.sha256, "pages": len(self.ingested.pages), "tokens": self.total_tokens,
                "tokens_used": self.used_tokens, "pages_used": self.pages_used, "title": self.ingested.title,
                "path": self.ingested.path, "window": self.window, "method": self.method,
                **{key: value for key, value in self.ingested.report.to_dict().items() if key != "pages"}}


@dataclass
class DocumentState:
    """The model's key/value cache after reading a document prefix."""

    sha256: str
    cache: object  # transformers Cache, cropped back to ``prefix_len`` after every answer
    prefix_len: int
    last_logits: torch.Tensor
    source: str = "prefill"  # how the latest read() got it: "prefill", "disk" (state cache) or "memory"
    restore_s: float = 0.0  # seconds spent restoring it from the state cache
    store_s: float = 0.0  # seconds spent saving it to the state cache
    cache_notice: str | None = None  # a cache problem to tell the user once (with the next answer)
    long: longdoc.LongState | None = None  # a document longer than the window (then ``cache`` is None)


class Engine:
    """Loads one model and answers questions about documents with it."""

    def __init__(self, settings: EngineSettings | None = None, library: Library | None = None) -> None:
        self.settings = settings or EngineSettings()
        self._library = library
        self.loaded: LoadedModel | None = None
        self._states: dict[str, DocumentState] = {}
        self._state_cache: StateCache | None = None
        self._pending_notice: str | None = None  # a cache problem found while restoring, told with the answer
        # Optional dict of segment keys/values by segment tokens (longdoc.read's memo); benchmarks that read many
        # near-identical long documents set it so unchanged segments are not read again.
        self.segment_memo: dict | None = None

    @property
    def library(self) -> Library:
        if self._library is None:
            self._library = Library()
        return self._library

    def load(self, progress: Progress | None = None) -> LoadedModel:
        if self.loaded is None:
            self.loaded = load_model(self.settings.model, self.settings.device, self.settings.device_map, progress)
            self._stop_ids = generation.stop_token_ids(self.loaded.tokenizer, self.loaded.model)
            dga.enable(self.loaded.model)  # SDPA unless an answer passes a DgaRun
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
        """Lay out the prompt of a document (a path is ingested first, see ``ingest``)."""
        loaded = self.load()
        ingested = source if isinstance(source, IngestedDocument) else self.ingest(source, password)
        layout = build_layout(loaded.tokenizer, ingested)
        budget = self._document_budget(layout)
        used = max(1, min(len(layout.doc_ids), budget))
        handle = DocumentHandle(ingested, layout, token_words(ingested, layout.doc_offsets), used, loaded.window)
        if used < len(layout.doc_ids):
            method = self.settings.long_documents
            if method not in ("select", "truncate"):
                raise DocFocusError(f"Unknown long-document method {method!r}; use select or truncate.")
            reading = self._reading_settings(budget) if method == "select" else None
            if reading is not None:
                handle.method, handle.used_tokens = "select", len(layout.doc_ids)
                handle.segment, handle.overlap = reading.segment, reading.overlap
                handle.segments = len(longdoc.segment_bounds(layout.doc_ids, reading.segment))
                chosen = self._long_settings(handle)
                handle.focal_tokens, handle.grouped = chosen.focal, chosen.groups
            else:
                handle.method = "truncate"
        return handle

    def _document_budget(self, layout: PromptLayout) -> int:
        """Document tokens that fit the window with room for the question and the answer."""
        return self.load().window - len(layout.head_ids) - QUESTION_RESERVE - ANSWER_RESERVE

    def _reading_settings(self, budget: int) -> longdoc.LongSettings | None:
        """How to read past the window with this model, or None where it cannot (no re-positionable RoPE keys,
        or a window too small for segments): segments shrink to fit a small window."""
        long = self.settings.long_settings()
        try:
            longdoc.rotary_frequencies(self.load().model)
        except DocFocusError as error:
            log.warning("%s Falling back to truncation.", error)
            return None
        long.overlap = min(long.overlap, budget // 8)
        long.segment = min(long.segment, (budget - long.overlap) * 2 // 3)
        return long if long.segment >= 64 else None

    def _prefill_settings(self) -> dga_prefill.PrefillSettings | None:
        """Prefill-time DGA settings, or None for dense prefill."""
        if self.settings.prefill not in ("dense", "dga"):
            raise DocFocusError(f"Unknown prefill {self.settings.prefill!r}; use dense or dga.")
        if self.settings.prefill == "dense":
            return None
        return dga_prefill.PrefillSettings(**self.settings.prefill_options)

    def _long_settings(self, doc: DocumentHandle) -> longdoc.LongSettings:
        """The user's long-document settings with the reading fixed when ``doc`` was opened."""
        long = self.settings.long_settings()
        long.segment, long.overlap = doc.segment, doc.overlap
        long.focal = min(long.focal, self._document_budget(doc.layout) // 2)
        return long

    def read(self, doc: DocumentHandle, progress: Progress | None = None,
             should_stop: ShouldStop | None = None) -> tuple[DocumentState, float]:
        """The document's state, computing it if this engine has not read it yet; returns (state, seconds spent)."""
        state = self._states.get(_state_id(doc))
        if state is not None:
            state.source, state.restore_s, state.store_s = "memory", 0.0, 0.0
            return state, 0.0
        loaded = self.load()
        ids = doc.prefix_ids()
        state = self._restore_state(doc, ids)  # the state cache first: no prefill at all on a hit
        if state is not None:
            self._states[_state_id(doc)] = state
            return state, 0.0
        started = time.perf_counter()
        report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
        if doc.method == "select":
            long = longdoc.read(loaded.model, doc.layout.head_ids, doc.layout.doc_ids, self._long_settings(doc),
                                progress=report, should_stop=should_stop, memo=self.segment_memo)
            state = DocumentState(doc.sha256, None, len(ids), torch.zeros(1), long=long)
        else:
            cache = generation.new_cache(loaded.model.config)
            prefill = self._prefill_settings()
            if prefill is None:
                logits = generation.prefill(loaded.model, ids, cache, progress=report, should_stop=should_stop)
            else:
                logits = dga_prefill.prefill_dga(loaded.model, ids, cache, prefill, doc_start=doc.layout.doc_start,
                                                 progress=report, should_stop=should_stop)
            state = DocumentState(doc.sha256, cache, len(ids), logits)
        prefill_s = time.perf_counter() - started
        self._store_state(doc, ids, state)
        self._states[_state_id(doc)] = state
        return state, prefill_s

    # ---- state cache and history (engine/state_cache.py, engine/history.py)

    @property
    def state_cache(self) -> StateCache:
        """The document state cache, in ``states.sqlite`` beside the library database."""
        if self._state_cache is None:
            rows = self.library.db.execute("PRAGMA database_list").fetchall()
            main = next((row[2] for row in rows if row[1] == "main" and row[2]), None)
            folder = Path(main).parent if main else paths.data_dir()
            self._state_cache = StateCache(folder / "states.sqlite", self.settings.cache_cap_bytes)
        return self._state_cache

    def state_key(self, doc: DocumentHandle, ids: list[int] | None = None) -> StateKey:
        """What identifies ``doc``'s stored state for this model and these settings."""
        import transformers

        loaded = self.load()
        ids = doc.prefix_ids() if ids is None else ids
        storage = self.settings.cache_format
        if storage not in FORMATS:
            raise DocFocusError(f"Unknown cache format {storage!r}; use one of {', '.join(FORMATS)}.")
        # How the state was read is part of the key: other reading settings give other tensors.
        version = ".".join(transformers.__version__.split(".")[:2])
        if doc.method == "select":
            reading = self._long_settings(doc).reading_key()
        else:
            prefill = self._prefill_settings()
            reading = "prefill=dense" if prefill is None else f"prefill={prefill.tag()}"
        return StateKey(doc.sha256, loaded.id, loaded.revision, dtype_name(loaded.dtype), len(ids),
                        layout_hash(ids), storage, f"{reading};transformers={version}")

    def _restore_state(self, doc: DocumentHandle, ids: list[int]) -> DocumentState | None:
        if not self.settings.use_cache:
            return None
        loaded = self.load()
        started = time.perf_counter()
        layers = len(getattr(loaded.model.config, "layer_types", None) or []) or loaded.model.config.num_hidden_layers
        devices = _layer_devices(loaded.model, layers)
        long = doc.method == "select"
        restored = self.state_cache.load(self.state_key(doc, ids), loaded.dtype, devices + devices if long else devices)
        notice = " ".join(self.state_cache.take_notices()) or None
        if restored is None:
            self._pending_notice = notice
            return None
        if long:  # stored as the head's layers, then the document's (no concatenated copy of a large state)
            head, body = restored.layers[:layers], restored.layers[layers:]
            state = longdoc.LongState.from_parts(head, body, doc.layout.head_ids, doc.layout.doc_ids,
                                                 self._long_settings(doc))
            return DocumentState(doc.sha256, None, len(ids), restored.last_logits, source="disk",
                                 restore_s=time.perf_counter() - started, cache_notice=notice, long=state)
        cache = generation.new_cache(loaded.model.config)
        for layer, (keys, values) in enumerate(restored.layers):
            cache.update(keys, values, layer)  # (1, H_kv, L, D) each
        return DocumentState(doc.sha256, cache, len(ids), restored.last_logits, source="disk",
                             restore_s=time.perf_counter() - started, cache_notice=notice)

    def _store_state(self, doc: DocumentHandle, ids: list[int], state: DocumentState) -> None:
        """Save a freshly read state; a state that cannot be saved is answered from anyway, said once."""
        notice, self._pending_notice = self._pending_notice, None
        if self.settings.use_cache:
            started = time.perf_counter()
            if state.long is not None:
                layers = list(zip(state.long.head_keys, state.long.head_values)) + \
                    list(zip(state.long.keys, state.long.values))
            else:
                layers = [(layer.keys, layer.values) for layer in state.cache.layers]
            self.state_cache.cap_bytes = self.settings.cache_cap_bytes  # the user may have changed it
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
        if state.cache_notice:
            answer.notice = " ".join(filter(None, [answer.notice, state.cache_notice]))
            state.cache_notice = None
        if answer.stopped and not answer.answer:
            return answer
        settings = {"attention_mode": self.settings.attention_mode, "gamma": self.settings.gamma,
                    "group_size": self.settings.group_size, "max_new_tokens": max_new_tokens,
                    "cache_format": self.settings.cache_format,
                    "dga_options": dict(getattr(self.settings, "dga_options", {}) or {})}
        try:
            History(self.library.db).record(answer, settings)
        except sqlite3.Error as error:  # history must never cost the user the answer
            log.warning("could not record the answer in the history: %s", error)
        return answer

    def forget(self, doc: DocumentHandle) -> None:
        """Drop this engine's in-memory state of a document (the next question reads or restores it again)."""
        for key in [key for key in self._states if key.split(":")[0] == doc.sha256]:
            del self._states[key]


    def ask(self, doc: DocumentHandle, question: str, on_text: Callable[[str], None] | None = None,
            should_stop: ShouldStop | None = None, progress: Progress | None = None,
            max_new_tokens: int | None = None) -> Answer:
        """Answer ``question`` from ``doc``, streaming text pieces to ``on_text``."""
        loaded = self.load()
        q_ids = question_ids(loaded.tokenizer, doc.layout, question)
        started = time.perf_counter()
        state, prefill_s = self.read(doc, progress, should_stop)
        if state.long is not None:
            return self._ask_long(doc, state, question, q_ids, on_text, should_stop, max_new_tokens, started,
                                  prefill_s)
        limit = self._answer_limit(state.prefix_len, q_ids, max_new_tokens)
        run = strategies.get(self.settings.attention_mode).make_run(self.settings, doc.layout.doc_start,
                                                                    state.prefix_len)
        try:
            stream, first_token_s, decode_s = self._generate(state.cache, q_ids, _DgaHooks(run), limit, on_text,
                                                             should_stop, started)
        finally:
            generation.crop_cache(state.cache, state.prefix_len)  # the next question starts from the document again
        token_scores = np.zeros(doc.total_tokens, dtype=np.float32)
        kept = run.token_relevance()
        if kept is not None:
            token_scores[: len(kept)] = relevance.detrend(kept.cpu().numpy())
        attention = {"mode": self.settings.attention_mode, **run.settings.to_dict(),
                     "attended_fraction": run.attended_fraction()}
        attention.pop("compress")
        timings = self._timings(started, prefill_s, first_token_s, decode_s, len(stream.ids))
        return self._answer(doc, state, question, stream, attention, timings, token_scores, should_stop, limit)

    def _answer_limit(self, prefix_len: int, q_ids: list[int], max_new_tokens: int | None) -> int:
        window = self.load().window
        if prefix_len + len(q_ids) >= window:
            raise DocFocusError(f"The question is too long ({len(q_ids)} tokens) for the space left in the "
                                f"model's window.", "Ask a shorter question.")
        return max(1, min(max_new_tokens or self.settings.max_new_tokens, window - prefix_len - len(q_ids)))

    def _generate(self, cache, q_ids: list[int], hooks: generation.StepHooks, limit: int, on_text, should_stop,
                  started: float) -> tuple[generation.TextStream, float, float]:
        """Question prefill + greedy decode into ``cache``; returns (stream, first-token s, decode s)."""
        loaded = self.load()
        stream = generation.TextStream(loaded.tokenizer)
        first_token_s = decode_started = None
        logits = generation.prefill(loaded.model, q_ids, cache, hooks=hooks, should_stop=should_stop,
                                    phase="question")
        for token in generation.decode(loaded.model, cache, logits, limit, self._stop_ids, hooks=hooks,
                                       should_stop=should_stop):
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
                decode_started = time.perf_counter()
            piece = stream.push(token)
            if piece and on_text:
                on_text(piece)
        if first_token_s is None:
            first_token_s = time.perf_counter() - started
        decode_s = time.perf_counter() - decode_started if decode_started else 0.0
        return stream, first_token_s, decode_s

    def _timings(self, started: float, prefill_s: float, first_token_s: float, decode_s: float,
                 generated: int) -> dict:
        return {
            "load_s": round(self.load().load_s, 3),
            "prefill_s": round(prefill_s, 3),
            "first_token_s": round(first_token_s, 3),
            "decode_tokens_per_s": round((generated - 1) / decode_s, 2) if generated > 1 and decode_s > 0 else None,
            "total_s": round(time.perf_counter() - started, 3),
            "generated_tokens": generated,
        }

    def _answer(self, doc, state, question, stream, attention, timings, token_scores, should_stop, limit) -> Answer:
        evidence = [Evidence(**item) for item in relevance.passages(doc.ingested, doc.token_word, token_scores)]
        text = stream.text.strip()
        verdict = support.check(text, question, [item.text for item in evidence[:3]])
        citations = [Citation(evidence[i].page, evidence[i].text, i, evidence[i].boxes) for i in verdict.cited]
        answer = Answer(
            question=question.strip(), answer=text, document=doc.info(), model=self.load().info(),
            attention=attention, timings=timings, evidence=evidence, cache_hit=False,
            stopped=bool(should_stop and should_stop()), notice=doc.notice(), token_scores=token_scores,
            citations=citations, supported=verdict.supported, generated=text,
            highlights=relevance.highlights(doc.ingested, doc.token_word, token_scores),
        )
        return self._finish_answer(answer, state, limit)

    def _ask_long(self, doc, state, question, q_ids, on_text, should_stop, max_new_tokens, started,
                  prefill_s) -> Answer:
        """A document longer than the window: select passages for this question over the whole state, fold the
        rest into groups, re-position, then answer over [head + compacted document] (engine/longdoc.py)."""
        loaded = self.load()
        long = self._long_settings(doc)
        budget = self._document_budget(doc.layout)
        selection = longdoc.prepare(loaded.model, state.long, doc.token_word, [w.text for w in doc.ingested.words],
                                    q_ids, question, long, budget, should_stop)
        compacted = selection.compacted
        cache = longdoc.cache_with(loaded.model, compacted.keys, compacted.values)
        run = longdoc.BiasRun(compacted, len(doc.layout.head_ids))
        prefix_len = len(doc.layout.head_ids) + compacted.items
        limit = self._answer_limit(prefix_len, q_ids, max_new_tokens)
        stream, first_token_s, decode_s = self._generate(cache, q_ids, longdoc.Hooks(run), limit, on_text,
                                                         should_stop, started)
        token_scores = longdoc.token_relevance(selection, run, long)
        attention = {"mode": "dga-select", "window": doc.window, "document_tokens": doc.total_tokens,
                     "segments": len(state.long.segments), "focal_tokens": int(compacted.focal.sum()),
                     "group_size": compacted.group_size, "attended_tokens": compacted.items,
                     "attended_fraction": round(compacted.items / max(1, doc.total_tokens), 4), **long.to_dict()}
        timings = self._timings(started, prefill_s, first_token_s, decode_s, len(stream.ids))
        timings.update(selection.timings)
        return self._answer(doc, state, question, stream, attention, timings, token_scores, should_stop, limit)


class _DgaHooks(generation.StepHooks):
    """Passes the answer's DgaRun to the attention function; the question phase ends after its prefill."""

    def __init__(self, run: dga.DgaRun) -> None:
        self.run = run

    def forward_kwargs(self, phase: str) -> dict:
        return {"dga_run": self.run}

    def after_step(self, phase: str) -> None:
        self.run.phase = "decode"


def _state_id(doc: DocumentHandle) -> str:
    """In-memory state key: the same file opened as a whole-document read and as a truncation differs."""
    return f"{doc.sha256}:{doc.method}"


def _layer_devices(model, layers: int) -> list[torch.device]:
    """The device of each decoder layer (``device_map="auto"`` may spread them over several GPUs)."""
    default = next(model.parameters()).device
    try:
        decoder_layers = model.get_decoder().layers
        return [next(decoder_layers[i].parameters()).device for i in range(layers)]
    except (AttributeError, IndexError, StopIteration, TypeError):
        return [default] * layers
