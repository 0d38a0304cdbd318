"""Prefill and decode loops over a transformers KV cache (batch size 1, greedy).

Kept separate from the API so every way of answering shares one loop: an
``engine.attention.contract.AttentionRun`` (DGA, compacted passages, ...) travels in the
forward kwargs with the phase of each pass ("prefill", "question", "decode").
"""
from __future__ import annotations

import inspect
from typing import Callable, Iterator

import torch

from ..attention.contract import AttentionRun, forward_kwargs
from ..errors import CancelledError, OutOfMemoryError, is_out_of_memory

PREFILL_CHUNK = 512
ShouldStop = Callable[[], bool]


def new_cache(config):
    """A transformers DynamicCache whose attention layers keep every position and append in place (see
    GrowableLayer). Sliding-window layers (Mistral, Gemma 2/3, Phi-3) keep their whole history too: a reading
    keeps every token's keys so passages can be placed anywhere later, and the layer's mask (built from the
    config) still limits what it attends to."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=config)
    cache.layers = [GrowableLayer() if isinstance(layer, DynamicLayer) else layer for layer in cache.layers]
    return cache


def _growable_layer_class():
    from transformers.cache_utils import DynamicLayer

    class GrowableLayer(DynamicLayer):
        """A DynamicLayer that appends into spare capacity instead of re-concatenating the whole cache on every
        generated token (an O(length) copy per layer and step that dominates decoding long documents on CPU).
        ``keys``/``values`` stay (B, H_kv, length, D) views, so everything reading them works unchanged."""

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            length = self.keys.shape[-2] if self.keys.numel() else 0
            total = length + key_states.shape[-2]
            buffer = getattr(self, "_key_buffer", None)
            stale = buffer is None or self.keys.numel() and self.keys.data_ptr() != buffer.data_ptr()
            if stale or total > buffer.shape[-2] or buffer.dtype != key_states.dtype:
                self._reserve(key_states, value_states, length, total + total // 4 + 256)
            self._key_buffer[..., length:total, :] = key_states
            self._value_buffer[..., length:total, :] = value_states
            self.keys = self._key_buffer[..., :total, :]
            self.values = self._value_buffer[..., :total, :]
            return self.keys, self.values

        def _reserve(self, key_states, value_states, length: int, capacity: int) -> None:
            shape = (*key_states.shape[:-2], capacity, key_states.shape[-1])
            keys, values = key_states.new_empty(shape), value_states.new_empty(shape[:-1] + value_states.shape[-1:])
            if length:
                keys[..., :length, :] = self.keys
                values[..., :length, :] = self.values
            self._key_buffer, self._value_buffer = keys, values

    return GrowableLayer


class _LazyGrowable:
    """Builds the GrowableLayer class on first use, so importing this module does not import transformers."""

    _class = None

    def __call__(self):
        if _LazyGrowable._class is None:
            _LazyGrowable._class = _growable_layer_class()
        return _LazyGrowable._class()


GrowableLayer = _LazyGrowable()


def _cache_kwarg(model) -> str:
    """transformers renamed ``past_key_values`` to ``cache`` (5.2x); use whichever this version takes."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def crop_cache(cache, length: int) -> None:
    """Drop every cached position from ``length`` on (a negative count means 'remove' in all 5.x versions)."""
    removed = cache.get_seq_length() - length
    if removed > 0:
        cache.crop(-removed)


def _forward(model, ids: torch.Tensor, cache, run: AttentionRun | None, phase: str):
    try:
        kwargs = {_cache_kwarg(model): cache, **forward_kwargs(run, phase)}
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **kwargs)
    except RuntimeError as error:
        if is_out_of_memory(error):
            raise OutOfMemoryError("reading the document" if phase == "prefill" else "answering") from error
        raise
    if run is not None:
        run.after_step(phase)
    return out.logits


@torch.inference_mode()
def prefill(model, ids: list[int] | torch.Tensor, cache, run: AttentionRun | None = None, phase: str = "prefill",
            chunk_size: int = PREFILL_CHUNK, progress: Callable[[int, int], None] | None = None,
            should_stop: ShouldStop | None = None) -> torch.Tensor:
    """Feed ``ids`` into ``cache`` in chunks (bounded memory), every chunk in ``phase`` ("prefill" for the
    document, "question" for a question); returns the last position's logits (V,)."""
    device = next(model.parameters()).device
    ids = torch.as_tensor(ids, dtype=torch.long, device=device).view(1, -1)  # (1, T)
    total = ids.shape[1]
    assert total > 0, "nothing to prefill"
    logits = None
    for start in range(0, total, chunk_size):
        if should_stop and should_stop():
            raise CancelledError("reading the document" if phase == "prefill" else "answering")
        logits = _forward(model, ids[:, start:start + chunk_size], cache, run, phase)
        if progress:
            progress(min(start + chunk_size, total), total)
    return logits[0, -1]


@torch.inference_mode()
def forward_logits(model, ids: torch.Tensor, cache, run: AttentionRun | None = None, phase: str = "decode"):
    """One forward pass of ``ids`` (1, T) into ``cache``; the last position's logits (V,)."""
    return _forward(model, ids, cache, run, phase)[0, -1]


class Finish:
    """Why decoding ended: "complete" (a stop token or a loop cut off), "length" (the limit) or "stopped"."""

    def __init__(self) -> None:
        self.reason = "length"
        self.looped = False


# Adjusts the next-token logits (V,) given the tokens produced so far (the speed benchmark forces a sequence).
LogitsAdjuster = Callable[[torch.Tensor, list[int]], torch.Tensor]


@torch.inference_mode()
def decode(model, cache, first_logits: torch.Tensor, max_new_tokens: int, stop_ids: set[int],
           run: AttentionRun | None = None, should_stop: ShouldStop | None = None,
           adjust: LogitsAdjuster | None = None, finish: Finish | None = None) -> Iterator[int]:
    """Greedy decoding from ``first_logits``; yields token ids until a stop id, the limit, a loop, or a stop
    request (``finish`` says which)."""
    finish = finish or Finish()
    device = first_logits.device
    logits = first_logits
    produced: list[int] = []
    for _ in range(max_new_tokens):
        if adjust is not None:
            logits = adjust(logits, produced)
        token = int(torch.argmax(logits))
        if token in stop_ids:
            finish.reason = "complete"
            return
        produced.append(token)
        if is_looping(produced):
            finish.reason, finish.looped = "complete", True
            return
        yield token
        if should_stop and should_stop():
            finish.reason = "stopped"
            return
        step = torch.tensor([[token]], dtype=torch.long, device=device)
        logits = _forward(model, step, cache, run, "decode")[0, -1]


def is_looping(tokens: list[int], span: int = 8) -> bool:
    """True when the last ``span`` tokens already occurred earlier: greedy decoding of a small model
    otherwise repeats a sentence until the length limit."""
    if len(tokens) < 2 * span:
        return False
    tail = tokens[-span:]
    return any(tokens[i:i + span] == tail for i in range(len(tokens) - 2 * span + 1))


def stop_token_ids(tokenizer, model) -> set[int]:
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id and token_id >= 0:
            ids.add(token_id)
    return ids


class TextStream:
    """Turns token ids into text pieces without splitting multi-byte characters. With ``stops`` (a base model's
    end of answer, engine/model/prompt.py ``stop_texts``) the text ends before the first stop that follows some
    content (``stopped`` turns True), and a tail that could be the start of a stop is held back until it is
    not (``flush`` gives what is held at the end)."""

    def __init__(self, tokenizer, stops: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(stops)
        self.ids: list[int] = []
        self.text = ""
        self.shown = 0  # characters of ``text`` already returned
        self.stopped = False

    def push(self, token: int) -> str:
        if self.stopped:
            return ""
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # incomplete UTF-8 sequence: wait for the next token
            return ""
        cut = stop_index(text, self.stops)
        self.stopped = cut is not None
        self.text = text if cut is None else text[:cut]
        end = len(self.text) if cut is not None else len(text) - held_back(text, self.stops)
        piece, self.shown = self.text[self.shown:max(end, self.shown)], max(end, self.shown)
        return piece

    def flush(self) -> str:
        piece, self.shown = self.text[self.shown:], len(self.text)
        return piece


def stop_index(text: str, stops: tuple[str, ...]) -> int | None:
    """Where ``text`` ends: the first stop that follows some non-blank text, or None."""
    found = []
    for stop in stops:
        at = text.find(stop)
        while at >= 0 and not text[:at].strip():
            at = text.find(stop, at + 1)
        if at >= 0:
            found.append(at)
    return min(found, default=None)


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of ``text`` that could be the start of a stop."""
    return max((size for stop in stops for size in range(1, len(stop)) if text.endswith(stop[:size])), default=0)
