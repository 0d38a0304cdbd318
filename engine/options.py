"""The vocabulary of user-facing settings: a choice, an option with its limits, and the error a bad value raises.

engine/settings.py declares the options themselves; this module holds only the types, so that every part of
the engine (the attention strategy registry included) can name a choice without importing the settings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .errors import DocFocusError


class SettingsError(DocFocusError, ValueError):
    """A setting has a value outside its choices or limits."""


@dataclass(frozen=True)
class Choice:
    value: str
    label: str  # plain words for the window
    help: str = ""  # the technical detail (tooltips, --help)


@dataclass(frozen=True)
class Option:
    """One user-facing setting: where it lives in ``EngineSettings`` (``path``), its label and either choices or
    limits.

    ``name`` is its stable key (the window's saved settings, the command line's ``dest``); ``path`` the
    attribute path in the nested settings ("answer.focal_tokens"). ``advanced`` options live in the "Advanced"
    part of the settings dialog. ``flag`` is its command-line option; ``scale`` converts the field's unit to
    the one a user types (bytes -> GB for the cache cap).
    """

    name: str
    path: str
    label: str
    help: str
    flag: str | None = None
    choices: tuple[Choice, ...] | Callable[[], tuple[Choice, ...]] = ()
    low: float | None = None
    high: float | None = None
    advanced: bool = False
    scale: float = 1.0
    unit: str = ""

    def choice_list(self) -> tuple[Choice, ...]:
        return self.choices() if callable(self.choices) else self.choices

    def where(self) -> str:
        return f"{self.label} ({self.flag})" if self.flag else self.label

    def check(self, value) -> None:
        """Raise SettingsError when ``value`` is not allowed (not a choice, not a finite number, out of limits)."""
        options = self.choice_list()
        if options and value not in [c.value for c in options]:
            raise SettingsError(f"{self.where()}: {value!r} is not one of {', '.join(c.value for c in options)}.")
        if self.low is None and self.high is None:
            return
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise SettingsError(f"{self.where()} must be a number, got {value!r}.")
        if self._outside(value):
            raise self._out_of_limits(f"{value:,}" if isinstance(value, int) and self.scale == 1
                                      else f"{value / self.scale:g}")

    def _outside(self, value: float) -> bool:
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)

    def _out_of_limits(self, shown: str) -> SettingsError:
        low = "" if self.low is None else f"{self.low / self.scale:g}"
        high = "" if self.high is None else f"{self.high / self.scale:g}"
        bounds = f"between {low} and {high}" if low and high else f"at least {low}" if low else f"at most {high}"
        return SettingsError(f"{self.where()} must be {bounds}{self.unit}, got {shown}{self.unit}.")

    def from_user(self, typed: float | str):
        """A value as the user typed it (GB for the cache cap) in the field's unit, checked first: a non-finite
        or absurd number is refused before any conversion (1e300 GB would overflow to an infinite byte count)."""
        if self.scale == 1 or isinstance(typed, str):
            self.check(typed)
            return typed
        if not math.isfinite(typed):
            raise SettingsError(f"{self.where()} must be a number, got {typed!r}.")
        if self._outside(typed * self.scale):  # a float comparison: an overflow to inf is still outside
            raise self._out_of_limits(f"{typed:g}")
        value = int(typed * self.scale)
        self.check(value)
        return value
