"""What the user can choose, declared once and nested by concern.

    EngineSettings(model=..., device=...,
                   answer=AnswerSettings(...),        # how an answer is made (engine/answer/)
                   attention=AttentionSettings(...),  # the attention over a whole document (engine/attention/)
                   reading=ReadingSettings(...),      # how documents are read (engine/reading/)
                   store=StoreSettings(...))          # what is kept on disk (engine/store/)

Each part validates itself when it is made (a bad value raises ``SettingsError`` with a message a user can act
on), and ``EngineSettings`` checks every user-facing option (``OPTIONS``) once more against its choices and
limits. The command line and the settings dialog build their options from ``OPTIONS``; an option's ``path``
says which nested field it sets. ``changed`` returns a copy with some fields changed, validated again.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields

from .attention import strategies
from .attention.dga import DgaSettings
from .attention.dga_prefill import PrefillSettings
from .options import Choice, Option, SettingsError

GIB = 1024**3
CONTEXTS = ("passages", "document")
ORDERS = ("rank", "document")


@dataclass
class AnswerSettings:
    """How an answer is made: what it reads, how long it may be, and how passages are placed."""

    context: str = "passages"  # "passages": the best passages; "document": the whole document (it must fit)
    focal_tokens: int = 512  # passages: document tokens the answer attends to
    max_new_tokens: int = 200
    follow: int = 1  # the best `follow` passages bring the passage after them along
    order: str = "rank"  # placement: "rank" (the best passage last, next to the question) or "document"
    quote: bool = True  # answer with the document's own sentence when it answers and the generated text does not
    meaning: bool = True  # re-rank the word match's best passages by meaning, when the embedder is installed
    model_check: bool = True  # re-rank the very best by how likely the model finds the question after each
    attention_weight: float = 0.0  # > 0: the question's attention over a shortlist is weighed in (answer/focus.py)
    shortlist_tokens: int = 1536  # the shortlist's size, when the attention is weighed in

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS or self.order not in ORDERS:
            raise SettingsError(f"context must be one of {CONTEXTS} and order one of {ORDERS}; got "
                                f"{self.context!r}, {self.order!r}")
        if self.focal_tokens < 32 or self.max_new_tokens < 1 or self.attention_weight < 0 or self.follow < 0 \
                or self.shortlist_tokens < self.focal_tokens:
            raise SettingsError("the passage budget must be at least 32 tokens, an answer at least 1 token, "
                                "attention_weight and follow at least 0, and the shortlist at least the budget")


@dataclass
class AttentionSettings:
    """The attention an answer over the whole document runs with: a registered strategy (engine/attention/
    strategies.py: "dga", "dense", ...) and the Dynamic Group Attention knobs (engine/attention/dga.py)."""

    mode: str = "dga"
    dga: DgaSettings = field(default_factory=DgaSettings)

    def __post_init__(self) -> None:
        strategies.get(self.mode)  # raises SettingsError for an unknown mode


@dataclass
class ReadingSettings:
    """How documents are read: in segments of about ``segment`` tokens, each after ``overlap`` tokens of the
    text before it; ``prefill`` is how a whole document that fits the window is read for the "document"
    context (dense, or prefill-time DGA with ``prefill_dga``)."""

    long_documents: str = "select"  # "select": read in segments, answer from passages; "truncate": the part that fits
    segment: int = 512
    overlap: int = 128
    ahead: bool = False  # read every segment of a library document when it is added, not only when asked
    prefill: str = "dense"
    prefill_dga: PrefillSettings = field(default_factory=PrefillSettings)

    def __post_init__(self) -> None:
        if self.segment < 64 or not 0 <= self.overlap < self.segment:
            raise SettingsError(f"segments need at least 64 tokens and an overlap in [0, segment), got "
                                f"segment={self.segment}, overlap={self.overlap}")


@dataclass
class StoreSettings:
    """What is kept on disk: the stored readings (document states) and their format and size cap."""

    use_cache: bool = True  # False: neither restore nor store document states
    cache_format: str = "auto"  # "auto" (half precision), "model" (the model's dtype, exact), "fp16" or "int8"
    cache_cap_bytes: int = 4 * GIB


DEVICES = (Choice("auto", "Automatic (GPU if there is one)", "CUDA, then Apple MPS, then the CPU"),
           Choice("cpu", "CPU"), Choice("cuda", "NVIDIA GPU (CUDA)"), Choice("mps", "Apple GPU (MPS)"))
LONG_DOCUMENTS = (
    Choice("select", "Read the parts each question needs, answer from the passages that match it",
           "Reads a document in segments, only those that hold a question's passages (engine/reading/)"),
    Choice("truncate", "Read only the part that fits", "Answers from the first pages that fit the model's window"))
PREFILL = (Choice("dense", "Exact (default)", "Dense prefill"),
           Choice("dga", "Faster, approximate", "Prefill-time DGA: each chunk sees older text through focal and "
                                                "group tokens (engine/attention/dga_prefill.py)"))
ANSWER_CONTEXTS = (
    Choice("passages", "The passages that match the question (best for small models)",
           "passages: the best passages, up to --focal tokens, are placed next to the question"),
    Choice("document", "The whole document (for large models)",
           "document: the answer attends to the whole document with the chosen attention (it must fit the "
           "model's window; longer documents use the passages that fit)"))
OCR_LANGUAGES = (
    Choice("auto", "Any the OCR reads (English and other Latin-alphabet languages, Chinese, Japanese)",
           "The recogniser may output any character it knows"),
    Choice("latin", "English and other Latin-alphabet languages",
           "Latin letters with accents, Greek letters, math symbols and punctuation only"),
    Choice("chinese", "Chinese (with Latin)", "Chinese characters, CJK punctuation and Latin"),
    Choice("japanese", "Japanese (with Latin)", "Kana, kanji, CJK punctuation and Latin"))
CACHE_FORMATS = (Choice("auto", "Half precision (default)", "fp16 when the model computes in fp32 (the CPU), else "
                                                            "the model's own bf16/fp16"),
                 Choice("model", "Exact (the model's precision)"), Choice("fp16", "Half precision (fp16)"),
                 Choice("int8", "Compact (8-bit, about half of fp16)"))

OPTIONS: tuple[Option, ...] = (
    Option("device", "device", "Run the model on", "where the model runs", "--device", DEVICES),
    Option("max_new_tokens", "answer.max_new_tokens", "Longest answer", "longest answer in tokens",
           "--max-new-tokens", low=1, high=4096, unit=" tokens"),
    Option("long_documents", "reading.long_documents", "Documents longer than the model can read at once",
           "select reads the parts a question needs; truncate answers from the part that fits", "--long",
           LONG_DOCUMENTS),
    Option("answer_context", "answer.context", "Answer from", "what the answer reads", "--context",
           ANSWER_CONTEXTS),
    Option("focal_tokens", "answer.focal_tokens", "Passage budget",
           "tokens of the best passages the answer reads (context passages)", "--focal", low=32, high=65536,
           advanced=True, unit=" tokens"),
    Option("ocr_language", "ocr_language", "Language of scanned pages",
           "which scripts OCR may read on pages without a text layer (a document is recognised again when it "
           "changes)", "--ocr-language", OCR_LANGUAGES),
    Option("attention_mode", "attention.mode", "Attention", "how an answer over the whole document attends to it",
           "--attention", strategies.attention_choices, advanced=True),
    Option("gamma", "attention.dga.gamma", "Share of the document kept exactly (gamma)",
           "DGA: fraction of document tokens kept exactly (focal tokens); 1 = dense", "--gamma", low=0.0, high=1.0,
           advanced=True),
    Option("group_size", "attention.dga.group_size", "Group size (m)",
           "DGA: the other tokens are folded into groups of this many", "--group", low=1, high=4096, advanced=True),
    Option("reselect_every", "attention.dga.reselect_every", "Re-select every (tokens)",
           "DGA: re-open the groups the answer points at every N generated tokens (0: never)", "--reselect-every",
           low=0, high=4096, advanced=True, unit=" tokens"),
    Option("prefill", "reading.prefill", "Reading", "how a whole document is read for the document context",
           "--prefill", PREFILL, advanced=True),
    Option("cache_format", "store.cache_format", "Stored reading format",
           "how a document's state is stored for later questions", "--cache-format", CACHE_FORMATS, advanced=True),
    Option("cache_cap_bytes", "store.cache_cap_bytes", "Space for stored readings",
           "size cap of the stored document states; least recently used ones are dropped", "--cache-cap-gb",
           low=0, high=1 << 50, advanced=True, scale=GIB, unit=" GB"),
)
OPTION = {option.name: option for option in OPTIONS}


@dataclass
class EngineSettings:
    """What the user chose: the model and device, and the nested parts (see the module docstring)."""

    model: str | None = None  # None or "bundled", a folder, a .gguf file, or a hub id
    device: str = "auto"
    device_map: str | None = None  # "auto" spreads a large model over several GPUs
    ocr_language: str = "auto"  # scripts OCR may output on scanned pages (engine/ingest/ocr.py SCRIPTS)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    attention: AttentionSettings = field(default_factory=AttentionSettings)
    reading: ReadingSettings = field(default_factory=ReadingSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every option (after a change made in place, too), and that no number anywhere is NaN or infinite
        (a field without an option, set through the API, included)."""
        for option in OPTIONS:
            option.check(self.get(option.path))
        _check_finite(self, "")
        if self.device_map not in (None, "auto"):
            raise SettingsError(f"--device-map: {self.device_map!r} is not 'auto'.")

    def get(self, path: str):
        """The value at a dotted ``path`` ("answer.focal_tokens")."""
        value = self
        for part in path.split("."):
            value = getattr(value, part)
        return value

    def changed(self, **parts) -> "EngineSettings":
        """A validated copy with some fields changed: a top-level field by value, a nested part by a dict of its
        fields (nested again for its own parts), e.g. ``changed(answer={"focal_tokens": 256},
        attention={"mode": "dense", "dga": {"gamma": 0.2}})``."""
        return _replace(self, parts)

    def with_value(self, path: str, value) -> "EngineSettings":
        """A validated copy with the field at a dotted ``path`` set to ``value``."""
        head, _, rest = path.partition(".")
        parts: dict = {head: value}
        if rest:
            parts = {head: _nest(rest, value)}
        return self.changed(**parts)


def _check_finite(part, prefix: str) -> None:
    for item in fields(part):
        value = getattr(part, item.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{prefix}{item.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise SettingsError(f"Setting {prefix}{item.name} must be a number, got {value!r}.")


def _nest(path: str, value) -> dict:
    head, _, rest = path.partition(".")
    return {head: _nest(rest, value) if rest else value}


def _replace(instance, parts: dict):
    names = {f.name for f in fields(instance)}
    unknown = set(parts) - names
    if unknown:
        raise SettingsError(f"Unknown setting(s) {', '.join(sorted(unknown))} of {type(instance).__name__}.")
    changes = {}
    for name, value in parts.items():
        current = getattr(instance, name)
        changes[name] = _replace(current, value) if isinstance(value, dict) and dataclasses.is_dataclass(current) \
            else value
    try:
        return dataclasses.replace(instance, **changes)
    except SettingsError:
        raise
    except ValueError as error:  # a part's own check (DgaSettings, PrefillSettings)
        raise SettingsError(f"Bad {type(instance).__name__} value: {error}") from error
