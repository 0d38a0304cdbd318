"""The attention strategy registry: the public extension point for how an answer attends to a document.

A strategy turns the engine settings and the document's place in the cache into a per-answer attention run
(an ``engine.attention.AttentionRun``: it sees every layer's query/key/value and returns the attention output,
or None for plain SDPA). The built-in strategies are ``dense`` and ``dga``; a new one is one file that
defines its run and calls ``register`` (bench/baselines.py adds the evict and recent baselines this way)::

    register(AttentionStrategy("recent", "Most recent tokens", "StreamingLLM-like baseline", make_run))

``EngineSettings.attention_mode`` accepts any registered name, and the command line and the settings dialog
list them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class AttentionStrategy:
    """``make_run(settings, doc_start, doc_end)`` -> an AttentionRun for one answer over the cache, where the
    document occupies cache positions [doc_start, doc_end)."""

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
    _builtins()
    if name not in _REGISTRY:
        from .settings import SettingsError

        raise SettingsError(f"Unknown attention mode {name!r}; use one of {', '.join(_REGISTRY)}.")
    return _REGISTRY[name]


def attention_choices() -> tuple:
    from .settings import Choice

    _builtins()
    return tuple(Choice(s.name, s.label, s.help) for s in _REGISTRY.values())


def _builtins() -> None:
    if "dga" in _REGISTRY:
        return
    from . import dga

    def dense_run(settings, doc_start: int, doc_end: int):
        return dga.DgaRun(settings.dga_settings().replace(compress=False), doc_start, doc_end)

    def dga_run(settings, doc_start: int, doc_end: int):
        return dga.DgaRun(settings.dga_settings(), doc_start, doc_end)

    register(AttentionStrategy("dga", "Dynamic Group Attention (faster on long documents)",
                               "DGA: keeps the top gamma share of the document exactly and folds the rest into "
                               "groups of m", dga_run))
    register(AttentionStrategy("dense", "Full attention (exact)", "dense: every token attends to every token",
                               dense_run))
