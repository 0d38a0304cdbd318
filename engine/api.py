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

from . import dga, generation, paths, relevance
from .errors import DocFocusError
from .history import History
from .state_cache import FORMATS, StateCache, StateKey, StateTooLarge, dtype_name, layout_hash
from .ingest import IngestedDocument, file_sha256, ingest_pdf
from .library import Library
from .models import LoadedModel, load_model
from .prompt import PromptLayout, build_layout, question_ids, token_words

log = logging.getLogger("docfocus")
Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
# Tokens kept free after the document: the question plus the longest answer.
QUESTION_RESERVE = 128
ANSWER_RESERVE = 384


@dataclass
class EngineSettings:
    """What the user chose: model, device and answer length."""

    model: str | None = None  # None or "bundled", a folder, a .gguf file, or a hub id
    device: str = "auto"
    device_map: str | None = None  # "auto" spreads a large model over several GPUs
    max_new_tokens: int = 200
    # Attention used for answering: "dense" or "dga" (Dynamic Group Attention, engine/dga.py).
    attention_mode: str = "dga"
    gamma: float = 0.1  # DGA: fraction of document tokens kept exactly (focal tokens)
    group_size: int = 16  # DGA: the other tokens are folded into groups of this many
    # State cache (engine/state_cache.py): size cap in bytes for stored document states.
    cache_cap_bytes: int = 4 * 1024**3
    cache_format: str = "model"  # "model" (model dtype, exact), "fp16" or "int8" (see state_cache.py)
    use_cache: bool = True  # False: neither restore nor store document states
    dga_options: dict = field(default_factory=dict)  # other DgaSettings fields (reselect_every, bias, ...)


@dataclass
class DocumentHandle:
    """An opened document: ingest result, prompt layout and the part that fits the window."""

    ingested: IngestedDocument
    layout: PromptLayout
    token_word: np.ndarray  # (L,) word index per document token, -1 for none
    used_tokens: int  # document tokens given to the model
    window: int

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
        """A plain sentence for the user when the document does not fit the model's window."""
        if not self.truncated:
            return None
        return (f"This document is {self.total_tokens:,} tokens long but the model's window is "
                f"{self.window:,} tokens; answers use pages 1-{self.pages_used} of "
                f"{len(self.ingested.pages)} (the first {self.used_tokens:,} tokens).")

    def info(self) -> dict:
        return {"sha256": self.sha256, "pages": len(self.ingested.pages), "tokens": self.total_tokens,
                "tokens_used": self.used_tokens, "pages_used": self.pages_used, "title": self.ingested.title,
                "path": self.ingested.path}


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


@dataclass
class Evidence:
    """A passage the model relied on: 1-based page, its text, score and word boxes (PDF points)."""

    page: int
    text: str
    score: float
    boxes: list[list[float]] = field(default_factory=list)
    words: list[int] = field(default_factory=list)  # [first, last) word indices of the passage


@dataclass
class Answer:
    question: str
    answer: str
    document: dict
    model: dict
    attention: dict
    timings: dict
    evidence: list[Evidence]
    cache_hit: bool
    stopped: bool = False
    notice: str | None = None
    token_scores: np.ndarray | None = None  # (L,) relevance per document token, for heat overlays

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("token_scores")
        return data


class Engine:
    """Loads one model and answers questions about documents with it."""

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
            self._library = Library()
        return self._library

    def load(self, progress: Progress | None = None) -> LoadedModel:
        if self.loaded is None:
            self.loaded = load_model(self.settings.model, self.settings.device, self.settings.device_map, progress)
            self._stop_ids = generation.stop_token_ids(self.loaded.tokenizer, self.loaded.model)
            dga.enable(self.loaded.model)  # SDPA unless an answer passes a DgaRun
        return self.loaded

    def open_document(self, path: str | Path, password: str | None = None) -> DocumentHandle:
        """Ingest a PDF (or take its copy from the library) and lay out its prompt."""
        loaded = self.load()
        ingested = None
        if Path(path).is_file():
            ingested = self.library.load(file_sha256(path)) if password is None else None
        if ingested is None:
            ingested = ingest_pdf(path, password)
            self.library.save(ingested)
        layout = build_layout(loaded.tokenizer, ingested)
        budget = loaded.window - len(layout.head_ids) - QUESTION_RESERVE - ANSWER_RESERVE
        used = max(1, min(len(layout.doc_ids), budget))
        return DocumentHandle(ingested, layout, token_words(ingested, layout.doc_offsets), used, loaded.window)

    def read(self, doc: DocumentHandle, progress: Progress | None = None,
             should_stop: ShouldStop | None = None) -> tuple[DocumentState, float]:
        """The document's state, computing it if this engine has not read it yet; returns (state, seconds spent)."""
        state = self._states.get(doc.sha256)
        if state is not None:
            state.source, state.restore_s, state.store_s = "memory", 0.0, 0.0
            return state, 0.0
        loaded = self.load()
        ids = doc.prefix_ids()
        state = self._restore_state(doc, ids)  # the state cache first: no prefill at all on a hit
        if state is not None:
            self._states[doc.sha256] = state
            return state, 0.0
        started = time.perf_counter()
        cache = generation.new_cache(loaded.model.config)
        report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
        logits = generation.prefill(loaded.model, ids, cache, progress=report, should_stop=should_stop)
        state = DocumentState(doc.sha256, cache, len(ids), logits)
        prefill_s = time.perf_counter() - started
        self._store_state(doc, ids, state)
        self._states[doc.sha256] = state
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
        # Prefill is dense today; a prefill-time DGA must add its settings here (they change the tensors).
        version = ".".join(transformers.__version__.split(".")[:2])
        return StateKey(doc.sha256, loaded.id, loaded.revision, dtype_name(loaded.dtype), len(ids),
                        layout_hash(ids), storage, f"prefill=dense;transformers={version}")

    def _restore_state(self, doc: DocumentHandle, ids: list[int]) -> DocumentState | None:
        if not self.settings.use_cache:
            return None
        loaded = self.load()
        started = time.perf_counter()
        layers = len(getattr(loaded.model.config, "layer_types", None) or []) or loaded.model.config.num_hidden_layers
        restored = self.state_cache.load(self.state_key(doc, ids), loaded.dtype, _layer_devices(loaded.model, layers))
        notice = " ".join(self.state_cache.take_notices()) or None
        if restored is None:
            self._pending_notice = notice
            return None
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
        self._states.pop(doc.sha256, None)

    def dga_settings(self) -> dga.DgaSettings:
        """DGA settings for answering; dense mode runs the same scoring without compressing."""
        mode = self.settings.attention_mode
        if mode not in ("dense", "dga"):
            raise DocFocusError(f"Unknown attention mode {mode!r}; use dense or dga.")
        return dga.DgaSettings(gamma=self.settings.gamma, group_size=self.settings.group_size,
                               compress=mode == "dga", **self.settings.dga_options)

    def ask(self, doc: DocumentHandle, question: str, on_text: Callable[[str], None] | None = None,
            should_stop: ShouldStop | None = None, progress: Progress | None = None,
            max_new_tokens: int | None = None) -> Answer:
        """Answer ``question`` from ``doc``, streaming text pieces to ``on_text``."""
        loaded = self.load()
        q_ids = question_ids(loaded.tokenizer, doc.layout, question)
        started = time.perf_counter()
        state, prefill_s = self.read(doc, progress, should_stop)
        limit = max_new_tokens or self.settings.max_new_tokens
        limit = max(1, min(limit, loaded.window - state.prefix_len - len(q_ids)))
        if state.prefix_len + len(q_ids) >= loaded.window:
            raise DocFocusError(f"The question is too long ({len(q_ids)} tokens) for the space left in the "
                                f"model's window.", "Ask a shorter question.")
        stream = generation.TextStream(loaded.tokenizer)
        first_token_s = None
        decode_started = None
        run = dga.DgaRun(self.dga_settings(), doc.layout.doc_start, state.prefix_len)
        hooks = _DgaHooks(run)
        try:
            logits = generation.prefill(loaded.model, q_ids, state.cache, hooks=hooks, should_stop=should_stop,
                                        phase="question")
            for token in generation.decode(loaded.model, state.cache, logits, limit, self._stop_ids, hooks=hooks,
                                           should_stop=should_stop):
                if first_token_s is None:
                    first_token_s = time.perf_counter() - started
                    decode_started = time.perf_counter()
                piece = stream.push(token)
                if piece and on_text:
                    on_text(piece)
        finally:
            generation.crop_cache(state.cache, state.prefix_len)  # the next question starts from the document again
        generated = len(stream.ids)
        decode_s = time.perf_counter() - decode_started if decode_started else 0.0
        timings = {
            "load_s": round(loaded.load_s, 3),
            "prefill_s": round(prefill_s, 3),
            "first_token_s": round(first_token_s if first_token_s is not None else time.perf_counter() - started, 3),
            "decode_tokens_per_s": round((generated - 1) / decode_s, 2) if generated > 1 and decode_s > 0 else None,
            "total_s": round(time.perf_counter() - started, 3),
            "generated_tokens": generated,
        }
        token_scores = np.zeros(doc.total_tokens, dtype=np.float32)
        kept = run.token_relevance()
        if kept is not None:
            token_scores[: len(kept)] = relevance.detrend(kept.cpu().numpy())
        evidence = [Evidence(**item) for item in relevance.passages(doc.ingested, doc.token_word, token_scores)]
        attention = {"mode": self.settings.attention_mode, **run.settings.to_dict(),
                     "attended_fraction": run.attended_fraction()}
        attention.pop("compress")
        answer = Answer(
            question=question.strip(), answer=stream.text.strip(), document=doc.info(), model=loaded.info(),
            attention=attention, timings=timings, evidence=evidence, cache_hit=False,
            stopped=bool(should_stop and should_stop()), notice=doc.notice(), token_scores=token_scores,
        )
        return self._finish_answer(answer, state, limit)


class _DgaHooks(generation.StepHooks):
    """Passes the answer's DgaRun to the attention function; the question phase ends after its prefill."""

    def __init__(self, run: dga.DgaRun) -> None:
        self.run = run

    def forward_kwargs(self, phase: str) -> dict:
        return {"dga_run": self.run}

    def after_step(self, phase: str) -> None:
        self.run.phase = "decode"


def _layer_devices(model, layers: int) -> list[torch.device]:
    """The device of each decoder layer (``device_map="auto"`` may spread them over several GPUs)."""
    default = next(model.parameters()).device
    try:
        decoder_layers = model.get_decoder().layers
        return [next(decoder_layers[i].parameters()).device for i in range(layers)]
    except (AttributeError, IndexError, StopIteration, TypeError):
        return [default] * layers
