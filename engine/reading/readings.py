"""The model's readings of opened documents: kept in memory, restored from the state cache, or read.

Two kinds of reading:

- **segments** (``lazy``): a ``LazyReading`` (engine/reading/lazy.py) holds the chat head and the few segments
  used last; a question loads or reads only the segments that hold its passages, and each segment read is
  stored at once (keyed by its content), so nothing is read twice and an interrupted reading loses nothing.
- **whole** (``whole``): the dense cache of [chat head + document], read in one pass (or with prefill-time
  DGA), for an answer that attends to the whole document; restored whole from the state cache when stored.
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from typing import Callable

import torch

from ..attention import dga_prefill
from ..model import generation
from ..store.state_cache import FORMATS, StateCache, StateKey, StateTooLarge, dtype_name, layout_hash
from .documents import DocumentHandle, DocumentState
from .lazy import LazyReading, SegmentSource
from .segments import Reading

Progress = Callable[[str, int, int], None]
ShouldStop = Callable[[], bool]
READ_CHUNK = 256  # tokens per forward pass when reading a whole document: a Stop is heard between two of them
WHOLE_KEPT = 2  # whole readings kept in memory (each is a full dense cache)


class Readings:
    """Readings of the documents one engine opened (``loaded``: the model; ``settings_of()``: the engine's
    settings, read at each call so a change applies at once; ``cache_of()``: the state cache)."""

    def __init__(self, loaded, settings_of: Callable, cache_of: Callable[[], StateCache],
                 keeps: Callable[[str], bool] = lambda sha256: True) -> None:
        self.loaded = loaded
        self._settings_of = settings_of
        self._cache_of = cache_of
        self._keeps = keeps  # False for a document nothing of which may be written to disk (one with a password)
        self._memory: dict[str, LazyReading] = {}
        self._whole: OrderedDict[str, DocumentState] = OrderedDict()
        self._notices: list[str] = []

    @property
    def settings(self):
        return self._settings_of()

    def _store(self, sha256: str | None = None) -> StateCache | None:
        if not self.settings.store.use_cache or (sha256 is not None and not self._keeps(sha256)):
            return None
        cache = self._cache_of()
        cache.cap_bytes = self.settings.store.cache_cap_bytes  # the user may have changed it
        return cache

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        store = self._store()
        return notices + (store.take_notices() if store is not None else [])

    def forget(self, sha256: str) -> None:
        """Drop every in-memory reading of a document (the next question loads or reads them again)."""
        for kept in (self._memory, self._whole):
            for key in [key for key in kept if key.split(":")[0] == sha256]:
                del kept[key]

    # -- segments

    def lazy(self, doc: DocumentHandle) -> LazyReading:
        """The document's segment reading (nothing is read until a question needs it)."""
        key = doc.state_id("segments")
        if key not in self._memory:
            loaded = self.loaded
            base = self.state_key(doc, doc.layout.head_ids, doc.segmenting.reading_key())

            def name(kind: str, tag: str, tokens: int) -> StateKey:  # by content: identical segments are shared
                return dataclasses.replace(base, sha256=f"{kind}:{tag}", prefix_tokens=tokens, layout_hash=tag,
                                           variant=f"{base.variant};{kind}")
            source = SegmentSource(loaded.model, self._store(doc.sha256), name, loaded.dtype, layer_devices(loaded.model),
                                   doc.ingested.title, doc.ingested.path)
            self._memory[key] = LazyReading(source, doc.layout.head_ids, doc.layout.doc_ids, doc.bounds,
                                            doc.segmenting.overlap)
        return self._memory[key]

    # -- whole documents

    def whole(self, doc: DocumentHandle, progress: Progress | None = None,
              should_stop: ShouldStop | None = None) -> tuple[DocumentState, float]:
        """The dense reading of [head + the document's used tokens]: from memory, the state cache, or read now;
        returns (state, seconds spent reading)."""
        key = doc.state_id("whole")
        state = self._whole.get(key)
        if state is not None:
            self._whole.move_to_end(key)
            state.source, state.restore_s, state.store_s = "memory", 0.0, 0.0
            return state, 0.0
        ids = doc.prefix_ids()
        state = self._restore(doc, ids)
        read_s = 0.0
        if state is None:
            started = time.perf_counter()
            state = self._read(doc, ids, progress, should_stop)
            read_s = time.perf_counter() - started
            self._save(doc, ids, state)
        self._whole[key] = state
        while len(self._whole) > WHOLE_KEPT:
            self._whole.popitem(last=False)
        return state, read_s

    def _prefill(self) -> dga_prefill.PrefillSettings | None:
        reading = self.settings.reading
        return None if reading.prefill == "dense" else reading.prefill_dga

    def _read(self, doc: DocumentHandle, ids: list[int], progress, should_stop) -> DocumentState:
        model, head = self.loaded.model, len(doc.layout.head_ids)
        report = None
        if progress:
            def report(done: int, total: int) -> None:
                progress("Reading the document", max(0, done - head), total - head)
            report(0, len(ids))
        cache = generation.new_cache(model.config)
        prefill = self._prefill()
        if prefill is None:
            logits = generation.prefill(model, ids, cache, progress=report, should_stop=should_stop,
                                        chunk_size=READ_CHUNK)
        else:
            logits = dga_prefill.prefill_dga(model, ids, cache, prefill, doc_start=head, progress=report,
                                             should_stop=should_stop)
        return _whole_state(doc, cache, len(ids), logits)

    def _restore(self, doc: DocumentHandle, ids: list[int]) -> DocumentState | None:
        store = self._store(doc.sha256)
        if store is None:
            return None
        started = time.perf_counter()
        restored = store.load(self.state_key(doc, ids), self.loaded.dtype, layer_devices(self.loaded.model))
        if restored is None:
            return None
        cache = generation.new_cache(self.loaded.model.config)
        for layer, (keys, values) in enumerate(restored.layers):
            cache.update(keys, values, layer)  # (1, H_kv, L, D) each
        return _whole_state(doc, cache, len(ids), restored.last_logits, source="disk",
                            restore_s=time.perf_counter() - started)

    def _save(self, doc: DocumentHandle, ids: list[int], state: DocumentState) -> None:
        """Store a freshly read state; one that cannot be stored is answered from anyway, said once."""
        store = self._store(doc.sha256)
        if store is None:
            return
        started = time.perf_counter()
        try:
            store.store(self.state_key(doc, ids), [(layer.keys, layer.values) for layer in state.cache.layers],
                        state.last_logits, title=doc.ingested.title, path=doc.ingested.path)
        except StateTooLarge as error:
            self._notices.append(str(error))
        state.store_s = time.perf_counter() - started

    def state_key(self, doc: DocumentHandle, ids: list[int] | None = None, reading: str | None = None) -> StateKey:
        """What identifies a stored reading of ``doc`` (``ids``: the tokens read, by default the whole prefix)
        for this model and these settings: any change is a miss, never a wrong hit."""
        import transformers

        loaded = self.loaded
        ids = doc.prefix_ids() if ids is None else ids
        storage = storage_format(self.settings.store.cache_format, loaded.dtype)
        if reading is None:
            prefill = self._prefill()
            reading = "prefill=dense" if prefill is None else f"prefill={prefill.tag()}"
        version = ".".join(transformers.__version__.split(".")[:2])
        return StateKey(doc.sha256, loaded.id, loaded.revision, dtype_name(loaded.dtype), len(ids),
                        layout_hash(ids), storage, f"{reading};transformers={version}")


def storage_format(chosen: str, dtype: torch.dtype) -> str:
    """The format readings are stored in: "auto" is half precision (fp16 for a model computing in fp32, the
    model's own 2-byte dtype otherwise)."""
    if chosen == "auto":
        return "fp16" if dtype == torch.float32 else "model"
    assert chosen in FORMATS, chosen
    return chosen


def _whole_state(doc: DocumentHandle, cache, prefix_len: int, logits, **extra) -> DocumentState:
    head = len(doc.layout.head_ids)
    return DocumentState(doc.sha256, cache, Reading.of_cache(cache, head, prefix_len - head), prefix_len, logits,
                         **extra)


def layer_devices(model) -> list[torch.device]:
    """The device of each decoder layer (``device_map="auto"`` may spread them over several GPUs)."""
    layers = len(getattr(model.config, "layer_types", None) or []) or model.config.num_hidden_layers
    default = next(model.parameters()).device
    try:
        decoder_layers = model.get_decoder().layers
        return [next(decoder_layers[i].parameters()).device for i in range(layers)]
    except (AttributeError, IndexError, StopIteration, TypeError):
        return [default] * layers
