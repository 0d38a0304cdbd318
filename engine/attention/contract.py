"""The attention contract: how DocFocus plugs its own attention into a transformers model.

One attention function is registered with transformers (``ATTENTION_NAME``, with SDPA's mask builder) and
switched on per model instance by ``enable(model)``. Every forward pass may carry an ``AttentionRun`` and the
pass's phase in its kwargs (``generation.prefill``/``decode`` put them there); the function hands each
layer's query/key/value to the run, which returns the attention output or None for plain SDPA. Without a run
the model is plain SDPA, so other models and other calls are untouched.

Phases:
    ``prefill``   reading the document (possibly in chunks),
    ``question``  the question's tokens after the document (possibly in chunks; every chunk is "question"),
    ``decode``    one generated token per pass.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch

from . import ops

ATTENTION_NAME = "docfocus"
RUN_KWARG, PHASE_KWARG = "attention_run", "attention_phase"
PHASES = ("prefill", "question", "decode")


class AttentionRun:
    """Base class of a custom attention for one reading or one answer (subclasses override ``attend``).

    ``attend(module, query, key, value, attention_mask, scaling, phase)`` gets, for one layer
    (``module.layer_idx``), the query (B, H, q, D) and the whole cache's key/value (B, H_kv, kv, D), not
    repeated for grouped-query attention, and returns the output (B, q, H, D) or None to let SDPA compute it.
    ``after_step(phase)`` is called once per forward pass, after every layer ran.

    A run that sees the question records its attention over the document for the relevance ranking:
    ``question_mass`` (layer -> (L,) mass on each document token) and, as the answer goes on, ``answer_mass``
    ((L,) or None). Runs that do not leave them empty.
    """

    question_mass: Mapping = MappingProxyType({})  # runs that record it define their own dict
    answer_mass = None

    def attend(self, module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
               scaling: float, phase: str) -> torch.Tensor | None:
        return None

    def after_step(self, phase: str) -> None:
        pass

    def attended_fraction(self) -> float:
        """The share of the document's keys a decode step attends to (1.0 unless the run compresses)."""
        return 1.0


def forward_kwargs(run: AttentionRun | None, phase: str) -> dict:
    """The kwargs a forward pass carries for ``run`` in ``phase`` (none without a run)."""
    assert phase in PHASES, phase
    return {} if run is None else {RUN_KWARG: run, PHASE_KWARG: phase}


def attention_function(module, query, key, value, attention_mask, dropout: float = 0.0,
                       scaling: float | None = None, **kwargs):
    """transformers attention interface: (B, H, q, D) query, (B, H_kv, kv, D) cache -> ((B, q, H, D), None).

    What the run leaves to the model is the model's own attention: SDPA under the layer's mask (causal, or
    a sliding window), or written out where the layer soft-caps its logits (Gemma 2), which SDPA cannot."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    run: AttentionRun | None = kwargs.pop(RUN_KWARG, None)
    phase = kwargs.pop(PHASE_KWARG, "prefill")
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    if run is not None:
        output = run.attend(module, query, key, value, attention_mask, scaling, phase)
        if output is not None:
            return output, None
    key, value, attention_mask = _within_window(query, key, value, attention_mask, kwargs.get("sliding_window"))
    softcap = kwargs.pop("softcap", None)
    if softcap is not None:
        return ops.eager_attention(query, key, value, attention_mask, scaling, softcap), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)


def _within_window(query, key, value, attention_mask, window: int | None):
    """The keys/values (B, H_kv, kv, D) and mask (B, 1, q, kv) cut to the last ``window + q - 1`` keys, all that q
    new queries of a sliding-window layer can see: reading a long document costs such a layer its window, not
    the whole cache. Without a mask only one query is cut for (SDPA would align a causal mask wrongly)."""
    keep = (window or 0) + query.shape[2] - 1
    if not window or key.shape[2] <= keep or (attention_mask is None and query.shape[2] > 1):
        return key, value, attention_mask
    mask = attention_mask[..., -keep:] if attention_mask is not None else None
    return key[:, :, -keep:], value[:, :, -keep:], mask


_registered = False


def register() -> str:
    """Register the attention function and its mask builder (SDPA's) with transformers, once."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(ATTENTION_NAME, attention_function)
        AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
        _registered = True
    return ATTENTION_NAME


def enable(model) -> None:
    """Switch this model instance (only) to DocFocus attention; without a run it behaves as SDPA."""
    model.set_attn_implementation(register())
