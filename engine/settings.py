"""What the user can choose, defined once: the engine's settings, their choices, limits and plain-word labels.

``EngineSettings`` validates itself when it is made (a bad value raises ``SettingsError`` with a message a user
can act on); the command line and the settings dialog build their options from ``OPTIONS`` rather than copying
choice lists. Attention modes come from the attention strategy registry (engine/strategies.py), so a new
strategy needs no edit here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from .errors import DocFocusError

GIB = 1024**3


class SettingsError(DocFocusError):
    """A setting has a value outside its choices or limits."""


@dataclass(frozen=True)
class Choice:
    value: str
    label: str  # plain words for the window
    help: str = ""  # the technical detail (tooltips, --help)


@dataclass(frozen=True)
class Option:
    """One user-facing setting: the ``EngineSettings`` field it sets, its label and either choices or limits.

    ``advanced`` options live in the "Advanced" part of the settings dialog. ``flag`` is its command-line
    option; ``scale`` converts the field's unit to the one a user types (bytes -> GB for the cache cap).
    """

    name: str
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

    def check(self, value) -> None:
        """Raise SettingsError when ``value`` is not allowed."""
        where = f"{self.label} ({self.flag})" if self.flag else self.label
        options = self.choice_list()
        if options and value not in [c.value for c in options]:
            raise SettingsError(f"{where}: {value!r} is not one of {', '.join(c.value for c in options)}.")
        if self.low is not None or self.high is not None:
            shown = value / self.scale if isinstance(value, (int, float)) else value
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                raise SettingsError(f"{where} must be a number, got {value!r}.")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                low = "" if self.low is None else f"{self.low / self.scale:g}"
                high = "" if self.high is None else f"{self.high / self.scale:g}"
                bounds = f"between {low} and {high}" if low and high else f"at least {low}" if low else f"at most {high}"
                raise SettingsError(f"{where} must be {bounds}{self.unit}, got {shown:g}{self.unit}.")


def _attention_choices() -> tuple[Choice, ...]:
    from . import strategies

    return strategies.attention_choices()


DEVICES = (Choice("auto", "Automatic (GPU if there is one)", "CUDA, then Apple MPS, then the CPU"),
           Choice("cpu", "CPU"), Choice("cuda", "NVIDIA GPU (CUDA)"), Choice("mps", "Apple GPU (MPS)"))
LONG_DOCUMENTS = (
    Choice("select", "Read all of it, answer from the passages that match the question",
           "Reads the whole document in segments and selects passages per question (engine/segments.py)"),
    Choice("truncate", "Read only the part that fits", "Answers from the first pages that fit the model's window"))
PREFILL = (Choice("dense", "Exact (default)", "Dense prefill"),
           Choice("dga", "Faster, approximate", "Prefill-time DGA: each chunk sees older text through focal and "
                                                "group tokens (engine/dga_prefill.py)"))
ANSWER_CONTEXTS = (
    Choice("passages", "The passages that match the question (best for small models)",
           "passages: the best passages, up to --focal tokens, are placed next to the question"),
    Choice("document", "The whole document (for large models)",
           "document: the answer attends to the whole document with the chosen attention (it must fit the "
           "model's window; longer documents use the passages that fit)"))
CACHE_FORMATS = (Choice("model", "Exact (the model's precision)"), Choice("fp16", "Half precision (fp16)"),
                 Choice("int8", "Compact (8-bit, about half of fp16)"))

OPTIONS: tuple[Option, ...] = (
    Option("device", "Run the model on", "where the model runs", "--device", DEVICES),
    Option("max_new_tokens", "Longest answer", "longest answer in tokens", "--max-new-tokens", low=1, high=4096,
           unit=" tokens"),
    Option("long_documents", "Documents longer than the model can read at once",
           "select reads all of it; truncate answers from the part that fits", "--long", LONG_DOCUMENTS),
    Option("answer_context", "Answer from", "what the answer reads", "--context", ANSWER_CONTEXTS),
    Option("focal_tokens", "Passage budget", "tokens of the best passages the answer reads (context passages)",
           "--focal", low=32, high=65536, advanced=True, unit=" tokens"),
    Option("attention_mode", "Attention", "how the answer attends to the document", "--attention",
           _attention_choices, advanced=True),
    Option("gamma", "Share of the document kept exactly (gamma)",
           "DGA: fraction of document tokens kept exactly (focal tokens); 1 = dense", "--gamma", low=0.0, high=1.0,
           advanced=True),
    Option("group_size", "Group size (m)", "DGA: the other tokens are folded into groups of this many", "--group",
           low=1, high=4096, advanced=True),
    Option("prefill", "Reading", "how a document that fits the window is read", "--prefill", PREFILL,
           advanced=True),
    Option("cache_format", "Stored reading format", "how a document's state is stored for later questions",
           "--cache-format", CACHE_FORMATS, advanced=True),
    Option("cache_cap_bytes", "Space for stored readings",
           "size cap of the stored document states; least recently used ones are dropped", "--cache-cap-gb",
           low=0, high=1 << 50, advanced=True, scale=GIB, unit=" GB"),
)
OPTION = {option.name: option for option in OPTIONS}


@dataclass
class EngineSettings:
    """What the user chose: model, device, answer length, attention, reading and cache. Validated on creation
    (and by ``validate()`` after a change); see ``OPTIONS`` for the choices and limits."""

    model: str | None = None  # None or "bundled", a folder, a .gguf file, or a hub id
    device: str = "auto"
    device_map: str | None = None  # "auto" spreads a large model over several GPUs
    max_new_tokens: int = 200
    # Attention used when the answer reads the whole document: "dense", "dga" (Dynamic Group Attention,
    # engine/dga.py) or a registered strategy (engine/strategies.py).
    attention_mode: str = "dga"
    gamma: float = 0.1  # DGA: fraction of document tokens kept exactly (focal tokens)
    group_size: int = 16  # DGA: the other tokens are folded into groups of this many
    cache_cap_bytes: int = 4 * GIB  # state cache (engine/state_cache.py) size cap
    cache_format: str = "model"  # "model" (model dtype, exact), "fp16" or "int8"
    use_cache: bool = True  # False: neither restore nor store document states
    dga_options: dict = field(default_factory=dict)  # other DgaSettings fields (reselect_every, bias, ...)
    answer_context: str = "passages"  # what the answer reads (engine/answering.py)
    focal_tokens: int = 512  # passages: document tokens the answer reads
    answer_options: dict = field(default_factory=dict)  # other AnswerSettings fields (decoding, lexical, ...)
    long_documents: str = "select"
    long_options: dict = field(default_factory=dict)  # ReadingSettings fields (segment, overlap)
    prefill: str = "dense"
    prefill_options: dict = field(default_factory=dict)  # PrefillSettings fields (window, gamma, ...)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        names = {f.name for f in fields(self)}
        for option in OPTIONS:
            if option.name in names:
                option.check(getattr(self, option.name))
        if self.device_map not in (None, "auto"):
            raise SettingsError(f"--device-map: {self.device_map!r} is not 'auto'.")
        self.reading_settings()  # the option dicts are checked by their own dataclasses
        self.dga_settings()
        self.prefill_settings()
        self.answer_settings()

    def reading_settings(self):
        from .segments import ReadingSettings

        return _build(ReadingSettings, self.long_options, "long-document option")

    def answer_settings(self):
        from .answering import AnswerSettings

        return _build(AnswerSettings, {"context": self.answer_context, "focal": self.focal_tokens,
                                       **self.answer_options}, "answer option")

    def dga_settings(self):
        from .dga import DgaSettings

        return _build(DgaSettings, {"gamma": self.gamma, "group_size": self.group_size, **self.dga_options},
                      "DGA option")

    def prefill_settings(self):
        from .dga_prefill import PrefillSettings

        return _build(PrefillSettings, self.prefill_options, "prefill option")


def _build(kind, options: dict, what: str):
    try:
        return kind(**options)
    except TypeError as error:
        raise SettingsError(f"Unknown {what}: {error}") from error
    except ValueError as error:
        raise SettingsError(f"Bad {what}: {error}") from error
