"""Documents longer than the model's window: segment reading, then question-time selection.

Reading (cost linear in length, positions never leave the window):
    the document is cut into segments of about ``segment`` tokens at content-defined boundaries (so an
    edit moves only nearby boundaries); each segment is read after [chat head][the ``overlap`` tokens
    before it] and keeps its keys/values at the positions it was read at. The full state is the chat
    head's keys/values, every document token's keys/values and the position each one was read at.

Answering (DGA over the whole document):
    1. scoring: the question is run once after each segment alone (its keys re-positioned right after
       the head) and the attention mass its queries give every document token is recorded;
    2. selection: passages of ``span`` tokens are ranked by that mass and by how many of the question's
       rarer words they contain; the best fill ``focal`` tokens (and the passage after each, since an
       answer usually follows the words that match the question);
    3. compaction: every other token is folded into groups of m consecutive tokens (DGA: one key/value
       per group, weighted by the question's mean query, with a log-sum-exp logit bias), m grown until
       everything fits the window; focal tokens and groups stay in document order and their keys are
       rotated to compacted positions right after the head (RoPE is a rotation, so moving a key from
       position p to p' is one more rotation by p' - p);
    4. the question and the answer attend to [head + compacted document] with the groups' biases.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import dga, generation
from .errors import CancelledError, DocFocusError
from .relevance import STOPWORDS

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


@dataclass
class LongSettings:
    segment: int = 2048  # average segment length in tokens (boundaries between half and 1.5x this)
    overlap: int = 256  # tokens before a segment read again as its context
    focal: int = 1536  # document tokens the question sees exactly
    span: int = 64  # selection unit: passages of this many tokens
    follow: bool = True  # also keep the passage after each selected one
    # Fold the other tokens into groups too. Off by default: with the bundled 135M model, groups (any bias) cost
    # needle accuracy at 16K-32K (python -m bench --only long, README); the focal passages alone did better.
    groups: bool = False
    group_size: int = 16  # smallest m; grown so the compacted document fits the window
    group_bias: str = "none"  # "lse" (a group weighs like its members at the question), "log_m" or "none"
    lexical: float = 1.0  # weight of the question-word match against attention mass when ranking passages
    sinks: int = 4  # leading document tokens always kept

    def __post_init__(self) -> None:
        if self.segment < 64 or self.overlap < 0 or self.overlap >= self.segment:
            raise ValueError(f"segments need at least 64 tokens and an overlap in [0, segment), got "
                             f"segment={self.segment}, overlap={self.overlap}")
        if self.focal < 16 or self.span < 1 or self.group_size < 1 or self.sinks < 0:
            raise ValueError(f"focal must be at least 16 tokens (got {self.focal}), span and group size at least 1, "
                             f"sinks at least 0")
        if self.group_bias not in ("lse", "log_m", "none"):
            raise ValueError(f"group_bias must be lse, log_m or none, got {self.group_bias!r}")
        if self.lexical < 0:
            raise ValueError(f"lexical weight must be at least 0, got {self.lexical}")

    def to_dict(self) -> dict:
        return asdict(self)

    def reading_key(self) -> str:
        """What changes the stored state (the question-time knobs do not)."""
        return f"prefill=segments;segment={self.segment};overlap={self.overlap}"


# ---------------------------------------------------------------- positions


def rotary_frequencies(model) -> torch.Tensor:
    """The model's RoPE inverse frequencies (D/2,), or an error for a model without plain RoPE."""
    rotary = None
    try:
        rotary = model.get_decoder().rotary_emb
    except AttributeError:
        pass
    inv_freq = getattr(rotary, "inv_freq", None)
    head_dim = getattr(model.config, "head_dim", None) or model.config.hidden_size // model.config.num_attention_heads
    if inv_freq is None or 2 * inv_freq.numel() != head_dim:
        raise DocFocusError("This model's position encoding cannot be re-positioned, so it cannot read documents "
                            "longer than its window.", "Use a RoPE model (Llama, Qwen, Mistral, SmolLM...).")
    return inv_freq.detach().float()


def rotate(keys: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Move RoPE keys (..., N, D) read at positions p to p + delta (N,), as float32."""
    angle = delta.to(keys.device, torch.float32)[:, None] * inv_freq.to(keys.device)[None, :]
    angle = torch.cat([angle, angle], -1)  # (N, D), the rotate_half layout
    k = keys.float()
    half = k.shape[-1] // 2
    turned = torch.cat([-k[..., half:], k[..., :half]], -1)
    return k * angle.cos() + turned * angle.sin()


# ---------------------------------------------------------------- reading


def segment_bounds(ids: np.ndarray, target: int) -> list[tuple[int, int]]:
    """Cut ``ids`` into [start, end) segments of target/2 .. 1.5*target tokens, at positions chosen by a hash of
    the two tokens around them: inserting text moves only the boundaries near the insertion."""
    ids = np.asarray(ids, dtype=np.int64)
    length = len(ids)
    low, high = max(1, target // 2), max(2, target * 3 // 2)
    if length <= high:
        return [(0, length)]
    mixed = (ids[:-1] * 1_000_003 + ids[1:] * 7_919) % max(1, target // 2)
    candidates = np.nonzero(mixed == 0)[0] + 1  # a boundary may fall before token t
    bounds, start = [], 0
    while length - start > high:
        first = np.searchsorted(candidates, start + low)
        end = int(candidates[first]) if first < len(candidates) and candidates[first] <= start + high else start + high
        bounds.append((start, end))
        start = end
    bounds.append((start, length))
    return bounds


@dataclass
class LongState:
    """Everything answering needs: keys/values of the head and of every document token (per layer,
    (1, H_kv, ., D)) and the position each document key was read at."""

    head_keys: list[torch.Tensor]
    head_values: list[torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    positions: torch.Tensor  # (L,) long
    segments: list[tuple[int, int]]

    @property
    def head_len(self) -> int:
        return self.head_keys[0].shape[2]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]

    @classmethod
    def from_parts(cls, head, body, head_ids: list[int], doc_ids: np.ndarray, settings: LongSettings) -> "LongState":
        """Rebuild from stored per-layer (keys, values) of the head and of the document."""
        segments = segment_bounds(doc_ids, settings.segment)
        return cls([k for k, _ in head], [v for _, v in head], [k for k, _ in body], [v for _, v in body],
                   segment_positions(segments, len(head_ids), settings.overlap), segments)


def segment_positions(segments: list[tuple[int, int]], head_len: int, overlap: int) -> torch.Tensor:
    positions = torch.empty(segments[-1][1], dtype=torch.long)
    for start, end in segments:
        context = start - max(0, start - overlap)
        positions[start:end] = head_len + context + torch.arange(end - start)
    return positions


def cache_with(model, keys: list[torch.Tensor], values: list[torch.Tensor]):
    cache = generation.new_cache(model.config)
    for layer, (k, v) in enumerate(zip(keys, values)):
        cache.update(k, v, layer)
    return cache


@torch.inference_mode()
def read(model, head_ids: list[int], doc_ids: np.ndarray, settings: LongSettings,
         progress: Progress | None = None, should_stop: ShouldStop | None = None,
         memo: dict | None = None) -> LongState:
    """Read the whole document segment by segment. ``memo`` (optional dict) keeps each segment's keys/values
    by its tokens, so reading a document that shares segments with one read before skips them."""
    doc_ids = np.asarray(doc_ids, dtype=np.int64)
    head_cache = generation.new_cache(model.config)
    generation.prefill(model, head_ids, head_cache, should_stop=should_stop)
    head_keys = [layer.keys.clone() for layer in head_cache.layers]
    head_values = [layer.values.clone() for layer in head_cache.layers]
    head_len = len(head_ids)
    segments = segment_bounds(doc_ids, settings.segment)
    length = len(doc_ids)
    keys = [k.new_empty(*k.shape[:2], length, k.shape[3]) for k in head_keys]
    values = [v.new_empty(*v.shape[:2], length, v.shape[3]) for v in head_values]
    for start, end in segments:
        if should_stop and should_stop():
            raise CancelledError("reading the document")
        context = max(0, start - settings.overlap)
        piece = doc_ids[context:end]
        tag = hashlib.sha1(piece.tobytes() + repr(list(head_ids)).encode() +
                           str(start - context).encode()).hexdigest() if memo is not None else None
        if tag is not None and tag in memo:
            seg_keys, seg_values = memo[tag]
        else:
            cache = cache_with(model, head_keys, head_values)
            generation.prefill(model, piece.tolist(), cache, should_stop=should_stop)
            skip = head_len + start - context
            seg_keys = [layer.keys[:, :, skip:].clone() for layer in cache.layers]
            seg_values = [layer.values[:, :, skip:].clone() for layer in cache.layers]
            if tag is not None:
                memo[tag] = (seg_keys, seg_values)
        for layer in range(len(keys)):
            keys[layer][:, :, start:end] = seg_keys[layer]
            values[layer][:, :, start:end] = seg_values[layer]
        if progress:
            progress(end, length)
    return LongState(head_keys, head_values, keys, values, segment_positions(segments, head_len, settings.overlap),
                     segments)


# ---------------------------------------------------------------- answering


class _ScoreRun:
    """Attention hook for the scoring pass: records the question's attention mass over one segment and its
    mean query per layer, and lets SDPA compute the output."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.mass: dict[int, torch.Tensor] = {}  # layer -> (H_kv, end - start)
        self.query: dict[int, torch.Tensor] = {}  # layer -> (H_kv, D) mean query

    def attend(self, module, query, key, value, attention_mask, scaling):
        batch, heads, length, dim = query.shape
        kv_heads = key.shape[1]
        mass = dga.attention_mass(query, key, scaling, heads // kv_heads)
        self.mass[module.layer_idx] = mass[0, :, self.start:self.end]
        self.query[module.layer_idx] = query.reshape(batch, kv_heads, -1, dim).mean(2)[0].float()
        return None


class Hooks(generation.StepHooks):
    def __init__(self, run) -> None:
        self.run = run

    def forward_kwargs(self, phase: str) -> dict:
        return {"dga_run": self.run}

    def after_step(self, phase: str) -> None:
        if hasattr(self.run, "steps"):
            self.run.steps += 1


@torch.inference_mode()
def score(model, state: LongState, q_ids: list[int], should_stop: ShouldStop | None = None,
          progress: Progress | None = None):
    """Attention mass of the question over every document token (L,), and the question's mean query per layer
    (list of (H_kv, D)), from one pass of the question after each segment."""
    inv_freq = rotary_frequencies(model)
    head_len = state.head_len
    scores = torch.zeros(state.length)
    queries: list[torch.Tensor] | None = None
    for number, (start, end) in enumerate(state.segments):
        if should_stop and should_stop():
            raise CancelledError("answering")
        delta = torch.full((end - start,), head_len) - state.positions[start:end]
        seg_keys = [rotate(k[:, :, start:end], delta, inv_freq).to(k.dtype) for k in state.keys]
        seg_values = [v[:, :, start:end] for v in state.values]
        cache = cache_with(model, [torch.cat([hk, k], 2) for hk, k in zip(state.head_keys, seg_keys)],
                            [torch.cat([hv, v], 2) for hv, v in zip(state.head_values, seg_values)])
        run = _ScoreRun(head_len, head_len + end - start)
        generation.prefill(model, q_ids, cache, hooks=Hooks(run))
        mass = torch.stack([run.mass[i].float().cpu() for i in sorted(run.mass)])  # (layers, H_kv, n)
        scores[start:end] = mass.sum((0, 1))
        layer_queries = [run.query[i].cpu() for i in sorted(run.query)]
        queries = layer_queries if queries is None else [a + b for a, b in zip(queries, layer_queries)]
        if progress:
            progress(number + 1, len(state.segments))
    return scores, [q / len(state.segments) for q in queries]


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")


def _terms(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]


def lexical_scores(token_word: np.ndarray, words: list[str], question: str, span: int) -> np.ndarray:
    """Per passage of ``span`` tokens: sum over the question's words it contains of idf x tf/(tf+1.2) (BM25's
    saturation). ``token_word`` maps each token to its word in ``words`` (-1: none)."""
    wanted = set(_terms(question))
    count = math.ceil(len(token_word) / span)
    result = np.zeros(count)
    if not wanted:
        return result
    found, first = np.unique(token_word, return_index=True)  # each word once, at its first token
    hits: dict[str, np.ndarray] = {}
    for word, where in zip(found.tolist(), first.tolist()):
        if word < 0:
            continue
        for term in _terms(words[word]):
            if term in wanted:
                hits.setdefault(term, np.zeros(count))[where // span] += 1
    for term, tf in hits.items():
        df = np.count_nonzero(tf)
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        result += idf * tf / (tf + 1.2)
    return result


def _zscore(x: np.ndarray) -> np.ndarray:
    spread = x.std()
    return (x - x.mean()) / spread if spread > 0 else np.zeros_like(x)


def select_passages(attention: np.ndarray, lexical: np.ndarray, settings: LongSettings,
                    segments: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(focal token mask (L,), passage ranking score (P,)) from per-token attention and per-passage lexical
    scores. Attention is compared within each segment (minus its mean), since each segment was scored alone."""
    length = len(attention)
    centred = attention.astype(np.float64).copy()
    for start, end in segments:
        centred[start:end] -= centred[start:end].mean()
    count = math.ceil(length / settings.span)
    padded = np.zeros(count * settings.span)
    padded[:length] = centred
    passage_attention = padded.reshape(count, settings.span).sum(1)
    ranking = _zscore(passage_attention) + settings.lexical * _zscore(lexical)
    chosen = np.zeros(count, dtype=bool)
    budget = max(1, settings.focal // settings.span)
    for index in np.argsort(-ranking, kind="stable"):
        if chosen.sum() >= budget:
            break
        chosen[index] = True
        if settings.follow and index + 1 < count and chosen.sum() < budget:
            chosen[index + 1] = True
    focal = np.repeat(chosen, settings.span)[:length]
    focal[: settings.sinks] = True
    return focal, ranking


def group_items(focal: np.ndarray, group_size: int) -> np.ndarray:
    """Item index per token (L,): each focal token is its own item, runs of other tokens are cut into groups of
    ``group_size`` consecutive tokens; items are numbered in document order."""
    item = np.empty(len(focal), dtype=np.int64)
    current, run = -1, 0
    for index, is_focal in enumerate(focal):
        if is_focal or run == 0 or run >= group_size:
            current += 1
            run = 0
        item[index] = current
        run = 0 if is_focal else run + 1
    return item


def pick_group_size(focal: np.ndarray, settings: LongSettings, budget: int) -> int:
    """The smallest m >= settings.group_size whose compacted document fits ``budget`` tokens."""
    if not settings.groups:
        return 0
    size = settings.group_size
    while size < len(focal):
        if group_items(focal, size)[-1] + 1 <= budget:
            return size
        size *= 2
    return size


@dataclass
class Compacted:
    """The per-answer compacted document: keys/values per layer ([head + items]), each item's logit bias, and
    for each document token the item it went into (-1: left out)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    bias: list[torch.Tensor]  # (H_kv, head + items)
    item_of_token: np.ndarray  # (L,)
    focal: np.ndarray  # (L,) bool
    group_size: int
    items: int


@torch.inference_mode()
def compact(model, state: LongState, focal: np.ndarray, queries: list[torch.Tensor], group_size: int,
            group_bias: str = "none") -> Compacted:
    """Fold the document into focal tokens + groups (see the module doc), keys rotated to compacted positions."""
    inv_freq = rotary_frequencies(model)
    head_len = state.head_len
    if group_size:
        item = group_items(focal, group_size)
        token_index = np.arange(len(focal))
    else:  # focal tokens only
        token_index = np.nonzero(focal)[0]
        item = np.arange(len(token_index))
    items = int(item[-1]) + 1 if len(item) else 0
    device = state.keys[0].device
    token_t = torch.as_tensor(token_index, device=device)
    item_t = torch.as_tensor(item, device=device)
    delta = (head_len + item_t) - state.positions.to(device)[token_t]
    keys, values, biases = [], [], []
    scaling = model.config.head_dim ** -0.5 if getattr(model.config, "head_dim", None) else \
        (model.config.hidden_size // model.config.num_attention_heads) ** -0.5
    for layer, (k, v) in enumerate(zip(state.keys, state.values)):
        moved = rotate(k[0][:, token_t], delta, inv_freq)  # (H_kv, n, D) float32
        query = queries[layer].to(device)  # (H_kv, D)
        logits = torch.einsum("hnd,hd->hn", moved, query) * scaling
        kv_heads, dim = moved.shape[0], moved.shape[2]
        index = item_t[None, :].expand(kv_heads, -1)
        peak = torch.full((kv_heads, items), float("-inf"), device=device).scatter_reduce(
            1, index, logits, "amax", include_self=True)
        weight = torch.exp(logits - peak.gather(1, index))
        total = torch.zeros(kv_heads, items, device=device).index_add_(1, item_t, weight)
        share = (weight / total.gather(1, index))[..., None]
        group_keys = torch.zeros(kv_heads, items, dim, device=device).index_add_(1, item_t, share * moved)
        group_values = torch.zeros(kv_heads, items, dim, device=device).index_add_(
            1, item_t, share * v[0][:, token_t].float())
        members = torch.zeros(items, device=device).index_add_(0, item_t, torch.ones_like(item_t, dtype=torch.float))
        mean_logit = torch.einsum("hnd,hd->hn", group_keys, query) * scaling
        bias = torch.log(total) + peak - mean_logit  # exp(q.k_group + bias) = sum of exp(q.k_member) at the query
        if group_bias == "log_m":
            bias = torch.log(members)[None, :].expand_as(bias)
        elif group_bias == "none":
            bias = torch.zeros_like(bias)
        bias = torch.where(members[None, :] > 1, bias, torch.zeros_like(bias))
        keys.append(torch.cat([state.head_keys[layer], group_keys[None].to(k.dtype)], 2))
        values.append(torch.cat([state.head_values[layer], group_values[None].to(v.dtype)], 2))
        biases.append(torch.cat([bias.new_zeros(kv_heads, head_len), bias], 1))
    item_of_token = np.full(len(focal), -1, dtype=np.int64)
    item_of_token[token_index] = item
    return Compacted(keys, values, biases, item_of_token, focal, group_size, items)


class BiasRun:
    """Attention hook for answering over a compacted document: exact softmax attention where each compacted key
    carries its group's logit bias; also records how much attention each item gets (for the evidence)."""

    def __init__(self, compacted: Compacted, head_len: int, record_every: int = 4) -> None:
        self.bias = compacted.bias
        self.head_len = head_len
        self.items = compacted.items
        self.record_every = record_every
        self.steps = 0
        self.item_mass = None  # (items,) accumulated

    def attend(self, module, query, key, value, attention_mask, scaling):
        batch, heads, length, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[2]
        n_rep = heads // kv_heads
        prefix = self.bias[module.layer_idx].to(query.dtype)  # (H_kv, P)
        tail = total - prefix.shape[1]
        mask = query.new_zeros(kv_heads, length, total)
        mask[:, :, :prefix.shape[1]] = prefix[:, None, :]
        if length > 1:
            future = torch.ones(length, tail, dtype=torch.bool, device=query.device).triu(tail - length + 1)
            mask[:, :, prefix.shape[1]:] = mask[:, :, prefix.shape[1]:].masked_fill(future, float("-inf"))
        packed = query.reshape(batch, kv_heads, n_rep * length, dim)
        full_mask = mask[:, None].expand(kv_heads, n_rep, length, total).reshape(1, kv_heads, n_rep * length, total)
        out = F.scaled_dot_product_attention(packed, key, value, attn_mask=full_mask, scale=scaling)
        if self.steps == 0 or self.steps % self.record_every == 0:
            logits = torch.einsum("bgqd,bgnd->bgqn", packed.float(), key.float()) * scaling + full_mask.float()
            mass = torch.softmax(logits, -1)[..., self.head_len:self.head_len + self.items].sum((0, 1, 2))
            self.item_mass = mass if self.item_mass is None else self.item_mass + mass
        return out.reshape(batch, heads, length, dim).transpose(1, 2)


@dataclass
class Selection:
    compacted: Compacted
    attention: np.ndarray  # (L,) question's attention mass from the scoring pass
    ranking: np.ndarray  # (P,) passage ranking score
    timings: dict = field(default_factory=dict)


def prepare(model, state: LongState, token_word: np.ndarray, words: list[str], q_ids: list[int], question: str,
            settings: LongSettings, budget: int, should_stop: ShouldStop | None = None) -> Selection:
    """Score, select and compact for one question."""
    started = time.perf_counter()
    attention, queries = score(model, state, q_ids, should_stop)
    scored = time.perf_counter()
    lexical = lexical_scores(token_word, words, question, settings.span)
    focal, ranking = select_passages(attention.numpy(), lexical, settings, state.segments)
    size = pick_group_size(focal, settings, budget)
    compacted = compact(model, state, focal, queries, size, settings.group_bias)
    return Selection(compacted, attention.numpy(), ranking,
                     {"score_s": round(scored - started, 3), "select_s": round(time.perf_counter() - scored, 3)})


def token_relevance(selection: Selection, run: BiasRun, settings: LongSettings) -> np.ndarray:
    """Relevance per document token for the evidence: the answer's attention on each focal token, plus the
    passage ranking spread over the focal tokens (so a passage chosen by both signals leads)."""
    compacted = selection.compacted
    scores = np.zeros(len(compacted.focal), dtype=np.float64)
    focal_index = np.nonzero(compacted.focal)[0]
    if run.item_mass is not None and len(focal_index):
        mass = run.item_mass.float().cpu().numpy()
        scores[focal_index] = mass[compacted.item_of_token[focal_index]]
        scores /= scores.sum() or 1.0
    ranking = np.clip(selection.ranking, 0, None)
    per_token = np.repeat(ranking / settings.span, settings.span)[: len(scores)] * compacted.focal
    if per_token.sum() > 0:
        scores += per_token / per_token.sum()
    return scores.astype(np.float32)
