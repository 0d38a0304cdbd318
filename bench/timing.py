"""Timing helpers shared by the benchmark sections (bench/speed.py, bench/gpu.py, bench/prefill.py, ...).

How methods are compared, everywhere:

- in one process, on the same state (the caller builds it once and hands every method the same one);
- after a warm-up (every method runs once untimed: lazy initialisation, allocator growth, kernel choice);
- interleaved: round i runs the methods in order A B C, round i+1 in order C B A (ABBA...), so a drift of the
  machine's load touches every method alike;
- reported as a spread (min / median / max over the rounds), never one number, and ratios are taken per round
  (the methods of one round ran seconds apart) before their spread is reported.

On CUDA every timed call is bracketed by ``torch.cuda.synchronize()``; the attention share of a decode step is
timed with CUDA events (``AttentionTimer``), which do not stall the device between layers.
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from engine.attention.contract import AttentionRun


def synchronize(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, where every call is synchronous)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def load_average() -> float:
    """The 1-minute load average, to print beside every figure measured on a shared machine."""
    return round(os.getloadavg()[0], 2)


@dataclass
class Spread:
    """Samples of one measured quantity (seconds unless said otherwise)."""

    samples: list[float]

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def summary(self, scale: float = 1.0, digits: int = 3) -> dict:
        """{"min", "median", "max", "n"}, each value times ``scale`` (1000: seconds -> ms)."""
        return {"min": round(self.min * scale, digits), "median": round(self.median * scale, digits),
                "max": round(self.max * scale, digits), "n": len(self.samples)}

    def cell(self, scale: float = 1.0, digits: int = 1) -> str:
        """"median (min-max)" for a Markdown table."""
        return f"{self.median * scale:.{digits}f} ({self.min * scale:.{digits}f}-{self.max * scale:.{digits}f})"


def ratios(numerator: Spread, denominator: Spread) -> Spread:
    """Per-round ratios of two interleaved measurements (round i of one against round i of the other)."""
    return Spread([a / b for a, b in zip(numerator.samples, denominator.samples) if b > 0])


def timed(fn: Callable[[], object], device="cpu") -> float:
    """Seconds ``fn`` took (synchronised on CUDA); a ``float`` that ``fn`` returns is taken as its own
    measurement instead (a decode benchmark returns seconds per token, leaving its question prefill out)."""
    synchronize(device)
    started = time.perf_counter()
    own = fn()
    synchronize(device)
    return own if isinstance(own, float) else time.perf_counter() - started


def interleaved(methods: dict[str, Callable[[], object]], rounds: int, warmup: int = 1,
                device="cpu") -> dict[str, Spread]:
    """Run every method ``warmup`` times untimed, then ``rounds`` rounds in alternating order (ABBA...);
    returns each method's samples. A method is a callable as for ``timed``."""
    names = list(methods)
    for _ in range(warmup):
        for name in names:
            timed(methods[name], device)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for name in (names if number % 2 == 0 else names[::-1]):
            samples[name].append(timed(methods[name], device))
    return {name: Spread(values) for name, values in samples.items()}


class PeakMemory:
    """Peak memory during a block: the CUDA allocator's peak, or the process's resident size sampled every
    10 ms on the CPU (torch has no allocator counter there). ``extra_mb`` is the peak above the start;
    ``peak_mb`` the absolute peak (on the CPU: the whole process's RSS)."""

    def __init__(self, device) -> None:
        self.device = torch.device(device)
        self.base = self.peak = 0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = self.peak = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        self._process = psutil.Process()
        self.base = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def extra_mb(self) -> float:
        return round((self.peak - self.base) / 2**20, 1)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


class AttentionTimer(AttentionRun):
    """Wraps an ``AttentionRun`` (or none: plain SDPA) and times every attention call of the decode phase, the
    run's own work and the SDPA call it leaves to transformers alike, so that the share of a decode step spent
    in attention can be measured. ``seconds()`` is the attention time so far (on CUDA it reads the events,
    synchronising once)."""

    def __init__(self, inner: AttentionRun | None, device) -> None:
        self.inner, self.device = inner or AttentionRun(), torch.device(device)
        self.cpu_seconds, self.events = 0.0, []

    @property
    def question_mass(self):
        return self.inner.question_mass

    @property
    def answer_mass(self):
        return self.inner.answer_mass

    def attended_fraction(self) -> float:
        return self.inner.attended_fraction()

    def after_step(self, phase: str) -> None:
        self.inner.after_step(phase)

    def attend(self, module, query, key, value, attention_mask, scaling, phase):
        if phase != "decode":
            return self.inner.attend(module, query, key, value, attention_mask, scaling, phase)
        start = self._mark()
        output = self.inner.attend(module, query, key, value, attention_mask, scaling, phase)
        if output is None:  # what engine.attention.contract.attention_function does next
            output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling)
        self._finish(start)
        return output

    def _mark(self):
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _finish(self, start) -> None:
        if self.device.type == "cuda":
            self.events.append((start, self._mark()))
        else:
            self.cpu_seconds += time.perf_counter() - start

    def seconds(self) -> float:
        if self.events:
            torch.cuda.synchronize(self.device)
            self.cpu_seconds += sum(a.elapsed_time(b) for a, b in self.events) / 1000
            self.events = []
        return self.cpu_seconds
