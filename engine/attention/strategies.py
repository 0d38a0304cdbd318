"""The attention strategy registry: the public extension point for how an answer attends to a whole document.

A strategy turns the engine settings and the document's place in the cache into a per-answer attention run
(an ``engine.attention.contract.AttentionRun``: it sees every layer's query/key/value and returns the attention
output, or None for plain SDPA). The built-in strategies are ``dga`` and ``dense``; a new one is one file that
defines its run and calls ``register`` (bench/baselines.py adds the evict and recent baselines this way)::

    register(AttentionStrategy("recent", "Most recent tokens", "StreamingLLM-like baseline", make_run))

``AttentionSettings.mode`` accepts any registered name, and the command line and the settings dialog list them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..options import Choice, SettingsError
from . import dga


@dataclass(frozen=True)
class AttentionStrategy:
    """``make_run(settings, doc_start, doc_end)`` -> an AttentionRun for one answer over the cache, where the
    document occupies cache positions [doc_start, doc_end); ``settings`` is the engine's ``AttentionSettings``."""

    name: str
    label: str
    help: str
    make_run: Callable


_REGISTRY: dict[str, AttentionStrategy] = {}


def register(strategy: AttentionStrategy) -> AttentionStrategy:
    """Add (or replace) a strategy; returns it."""
    _REGISTRY[strategy.name] = strategy
    return strategy


def get(name: str) -> AttentionStrategy:
    if name not in _REGISTRY:
        raise SettingsError(f"Unknown attention mode {name!r}; use one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def attention_choices() -> tuple[Choice, ...]:
    return tuple(Choice(s.name, s.label, s.help) for s in _REGISTRY.values())


def _dga_run(settings, doc_start: int, doc_end: int):
    return dga.DgaRun(settings.dga, doc_start, doc_end)


def _dense_run(settings, doc_start: int, doc_end: int):
    """Exact attention that still records the question's and the answer's attention (for the evidence)."""
    return dga.DgaRun(settings.dga.replace(compress=False), doc_start, doc_end)


register(AttentionStrategy("dga", "Dynamic Group Attention (faster on long documents)",
                           "DGA: keeps the top gamma share of the document exactly and folds the rest into groups "
                           "of m", _dga_run))
register(AttentionStrategy("dense", "Full attention (exact)", "dense: every token attends to every token",
                           _dense_run))
