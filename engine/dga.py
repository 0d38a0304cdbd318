"""Dynamic Group Attention (DGA) at answer time, as a transformers attention implementation.

For each layer and KV head, the question's queries (later: the most recent
generated queries) score every document token; the top ``gamma`` fraction are
kept exactly (focal tokens) and the rest, in document order, are folded into
groups of ``m``: one key/value per group (a weighted mean of its members) plus
a logit bias so that a group stands for its members rather than for one token.
Decoding then attends to [prompt head + focal + groups + question + generated]
instead of the whole document.

The function is registered under ``ATTENTION_NAME`` and switched on per model
instance with ``model.set_attn_implementation``; its per-answer state travels in
the forward kwargs (``dga_run=DgaRun``), so other models and other calls are
untouched. Without a ``DgaRun`` (document prefill) it is plain SDPA.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

ATTENTION_NAME = "docfocus_dga"
WEIGHTINGS = ("qref", "mean")
BIASES = ("lse", "log_m", "none")


@dataclass
class DgaSettings:
    """DGA knobs; defaults were picked by ``python -m bench`` (see README)."""

    gamma: float = 0.1  # fraction of document tokens kept exactly, per layer and KV head
    min_focal: int = 256  # but at least this many: a short document gains no speed and a small model
    # needs more than 10% of a few hundred tokens to answer (measured on resources/sample.pdf, 239 tokens)
    group_size: int = 16  # m: other tokens are folded into groups of this many
    reselect_every: int = 4  # r: rescore and reselect after this many generated tokens (0: never)
    # How to reselect: "blocks" ranks the groups by their summary keys and opens the best `expand` ones back
    # into their exact tokens (cost ~ number of groups); "tokens" rescoring every token of the best blocks.
    reselect: str = "blocks"
    expand: int = 8
    recent_queries: int = 8  # queries (per head) that score the document when reselecting
    sinks: int = 4  # leading document tokens always kept (the chat head before them always is)
    smoothing: int = 3  # width of the average pooling over scores, so phrases stay whole (1: none)
    follow: int = 8  # the next `follow` tokens after a strong token inherit its score (what a copy needs next)
    weighting: str = "qref"  # group member weights: softmax at the reference query, or a plain mean
    bias: str = "lse"  # group logit bias: log-sum-exp matched at the reference query, log(members), or none
    compress: bool = True  # False: dense attention, only scoring (relevance for dense mode)
    # Benchmark baselines at DGA's key budget: "evict" keeps only the top tokens (SnapKV-like),
    # "recent" keeps the sinks and the most recent tokens (StreamingLLM-like); "" is DGA.
    baseline: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.group_size < 1:
            raise ValueError(f"group size must be at least 1, got {self.group_size}")
        if self.weighting not in WEIGHTINGS or self.bias not in BIASES:
            raise ValueError(f"weighting must be one of {WEIGHTINGS} and bias one of {BIASES}")
        if self.reselect not in ("blocks", "tokens"):
            raise ValueError(f"unknown reselect mode {self.reselect!r}")
        if self.baseline not in ("", "evict", "recent"):
            raise ValueError(f"unknown baseline {self.baseline!r}")
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise ValueError("smoothing must be an odd width >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "DgaSettings":
        return dataclasses.replace(self, **changes)


def smooth_scores(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Average-pool (B, H_kv, L) scores along L so neighbours of a strong token rise with it."""
    if width <= 1:
        return scores
    batch, heads, length = scores.shape
    pooled = F.avg_pool1d(scores.reshape(batch * heads, 1, length), width, stride=1, padding=width // 2,
                          count_include_pad=False)
    return pooled.reshape(batch, heads, length)


def follow_scores(scores: torch.Tensor, follow: int) -> torch.Tensor:
    """Each token gets the max of its own and its ``follow`` predecessors' scores: when the model attends to
    a phrase it usually copies or continues what comes right after it."""
    if follow <= 0:
        return scores
    batch, heads, length = scores.shape
    padded = F.pad(scores.reshape(batch * heads, 1, length), (follow, 0), value=float("-inf"))
    return F.max_pool1d(padded, follow + 1, stride=1).reshape(batch, heads, length)


def attention_mass(query: torch.Tensor, keys: torch.Tensor, scaling: float, n_rep: int) -> torch.Tensor:
    """Causal softmax of ``query`` (B, H, T, D) over ``keys`` (B, H_kv, N, D), the T queries being the last
    T positions; summed over T and over the query heads sharing each KV head -> (B, H_kv, N)."""
    batch, q_heads, length, dim = query.shape
    kv_heads, total = keys.shape[1], keys.shape[2]
    grouped = query.reshape(batch, kv_heads, n_rep * length, dim).float()
    logits = torch.einsum("bgqd,bgnd->bgqn", grouped, keys.float()) * scaling  # (B, H_kv, n_rep*T, N)
    if length > 1:
        query_pos = torch.arange(total - length, total, device=keys.device).repeat(n_rep)
        future = torch.arange(total, device=keys.device)[None, :] > query_pos[:, None]
        logits = logits.masked_fill(future, float("-inf"))
    return torch.softmax(logits, dim=-1).sum(2)


@dataclass
class _Blocks:
    """One layer's document cut into fixed blocks of m tokens, with member weights made once per answer at
    the question's reference query. Groups are these blocks minus their focal members; reselecting during
    decoding ranks the blocks by whole-block summary keys, so it costs ~ b = L/m, not L."""

    start: int  # cache position of the first grouped token (after the chat head and the sinks)
    keys: torch.Tensor  # (B, H_kv, b, m, D) view of the grouped region of the cache
    values: torch.Tensor
    weight: torch.Tensor  # (B, H_kv, b, m) member weights for the mean
    expo: torch.Tensor  # (B, H_kv, b, m) exp(ref logit - block max), for the log-sum-exp bias
    block_max: torch.Tensor  # (B, H_kv, b)
    query_ref: torch.Tensor  # (B, H_kv, D)
    ranking_keys: torch.Tensor  # (B, H_kv, b, D) whole-block mean keys, to rank blocks when reselecting
    ranking_bias: torch.Tensor  # (B, H_kv, b)

    @property
    def count(self) -> int:
        return self.keys.shape[2]

    @property
    def size(self) -> int:
        return self.keys.shape[3]


def build_blocks(key: torch.Tensor, value: torch.Tensor, start: int, end: int, query_ref: torch.Tensor,
                 settings: DgaSettings, scaling: float) -> _Blocks:
    """Blocks over cache positions [start, start + b*m) with b = (end - start) // m."""
    m = settings.group_size
    batch, heads, _, dim = key.shape
    count = (end - start) // m
    keys = key[:, :, start:start + count * m].reshape(batch, heads, count, m, dim)
    values = value[:, :, start:start + count * m].reshape(batch, heads, count, m, dim)
    logits = torch.einsum("bhgmd,bhd->bhgm", keys.float(), query_ref.float()) * scaling
    block_max = logits.amax(-1)
    expo = torch.exp(logits - block_max[..., None])
    weight = expo if settings.weighting == "qref" else torch.ones_like(expo)
    total = weight.sum(-1)
    ranking_keys = torch.einsum("bhgm,bhgmd->bhgd", weight, keys.float()) / total[..., None]
    ranking_bias = _group_bias(settings, ranking_keys, expo.sum(-1), block_max, torch.full_like(total, m),
                               query_ref, scaling)
    return _Blocks(start, keys, values, weight, expo, block_max, query_ref, ranking_keys, ranking_bias)


def _group_bias(settings, group_keys, expo_sum, block_max, members, query_ref, scaling) -> torch.Tensor:
    """Logit bias per group (B, H_kv, b); -inf for a group whose members are all focal."""
    if settings.bias == "lse":
        # exp(q.k_group + bias) = sum_j exp(q.k_j) at the reference query
        mean_logit = torch.einsum("bhgd,bhd->bhg", group_keys, query_ref.float()) * scaling
        bias = torch.log(expo_sum.clamp_min(1e-30)) + block_max - mean_logit
    elif settings.bias == "log_m":
        bias = torch.log(members.clamp_min(1e-30))
    else:
        bias = torch.zeros_like(members)
    return bias.masked_fill(members < 0.5, float("-inf"))


def fold_blocks(blocks: _Blocks, focal: torch.Tensor, settings: DgaSettings, scaling: float):
    """Focal keys/values (B, H_kv, k, D), group keys/values (B, H_kv, b, D) and bias (B, H_kv, b) with the focal
    members (block-relative positions (B, H_kv, k)) taken out of their groups.

    The sums are recomputed over the remaining members rather than obtained by subtracting the focal ones:
    subtraction cancels catastrophically when a block's weight sits almost all on its focal tokens.
    """
    batch, heads, count, m, dim = blocks.keys.shape
    keep = torch.ones(batch, heads, count * m, device=focal.device).scatter_(2, focal, 0.0).view(batch, heads,
                                                                                                  count, m)
    weight = blocks.weight * keep
    total = weight.sum(-1).clamp_min(1e-30)[..., None]
    group_keys = torch.einsum("bhgm,bhgmd->bhgd", weight, blocks.keys.float()) / total
    group_values = torch.einsum("bhgm,bhgmd->bhgd", weight, blocks.values.float()) / total
    bias = _group_bias(settings, group_keys, (blocks.expo * keep).sum(-1), blocks.block_max, keep.sum(-1),
                       blocks.query_ref, scaling)
    index = focal[..., None].expand(-1, -1, -1, dim)
    focal_keys = blocks.keys.flatten(2, 3).gather(2, index)
    focal_values = blocks.values.flatten(2, 3).gather(2, index)
    return focal_keys, focal_values, group_keys, group_values, bias


def pick_focal(scores: torch.Tensor, count: int, settings: DgaSettings) -> torch.Tensor:
    """Top ``count`` positions (B, H_kv, count), sorted, after smoothing and follow-spreading the scores."""
    smoothed = smooth_scores(scores, settings.smoothing)
    # A token inherits half of a strong predecessor's score: enough to keep what a copy needs next, not so much
    # that the tail of every strong phrase crowds out tokens that are relevant in their own right.
    ranked = torch.maximum(smoothed, 0.5 * follow_scores(smoothed, settings.follow))
    return torch.topk(ranked, count, dim=-1).indices.sort(dim=-1).values


@dataclass
class _Buffer:
    """Preallocated keys/values/bias the decode steps attend to: [kept prefix | focal | groups | remainder |
    tail]; each step only appends its new tail tokens (question and generated), no re-concatenation."""

    keys: torch.Tensor  # (B, H_kv, capacity, D)
    values: torch.Tensor
    bias: torch.Tensor  # (B, H_kv, capacity)
    base: int  # entries before the tail
    tail: int = 0  # tail tokens copied so far

    def sync(self, key: torch.Tensor, value: torch.Tensor, tail_start: int) -> int:
        """Copy tail tokens not yet in the buffer; returns the number of valid entries."""
        wanted = key.shape[2] - tail_start
        if self.base + wanted > self.keys.shape[2]:
            self._grow(self.base + wanted + 64)
        if wanted > self.tail:
            self.keys[:, :, self.base + self.tail:self.base + wanted] = key[:, :, tail_start + self.tail:]
            self.values[:, :, self.base + self.tail:self.base + wanted] = value[:, :, tail_start + self.tail:]
            self.tail = wanted
        return self.base + wanted

    def _grow(self, capacity: int) -> None:
        pad = capacity - self.keys.shape[2]
        self.keys = F.pad(self.keys, (0, 0, 0, pad))
        self.values = F.pad(self.values, (0, 0, 0, pad))
        self.bias = F.pad(self.bias, (0, pad))


@dataclass
class _LayerState:
    recent: torch.Tensor  # (B, H, n, D) most recent queries
    blocks: _Blocks | None = None
    buffer: _Buffer | None = None
    focal: torch.Tensor | None = None  # (B, H_kv, k) cache positions kept exactly
    steps: int = 0
    group_bias: torch.Tensor | None = None  # (B, H_kv, b) the groups' bias as selected at the question
    opened: int = 0  # buffer index of the region holding re-opened blocks' exact tokens
    first_group: int = 0  # buffer index of the first group (the focal tokens come right before)


@dataclass
class DgaRun:
    """Per-answer DGA state, passed to the model as ``dga_run=`` in forward kwargs.

    ``doc_start``/``doc_end`` delimit the document in the cache; everything outside
    (chat head, question, generated tokens) is always attended exactly.
    """

    settings: DgaSettings
    doc_start: int
    doc_end: int
    phase: str = "question"  # "question" (dense + scoring) then "decode"
    layers: dict[int, _LayerState] = field(default_factory=dict)
    relevance: torch.Tensor | None = None  # (L_doc,) accumulated attention mass of kept tokens
    selections: int = 0
    attended_keys: int = 0  # compressed document keys per layer/head at the last selection

    @property
    def doc_length(self) -> int:
        return self.doc_end - self.doc_start

    def attended_fraction(self) -> float:
        if not self.settings.compress:
            return 1.0
        return round(self.attended_keys / max(1, self.doc_length), 4)

    def attend(self, module, query, key, value, attention_mask, scaling: float):
        """Attention output (B, q, H, D) for one layer call, or None where plain SDPA is right."""
        layer = module.layer_idx
        n_rep = query.shape[1] // key.shape[1]
        recent = query[:, :, -self.settings.recent_queries:].detach()
        state = self.layers.get(layer)
        if state is None or self.phase == "question":
            state = self.layers[layer] = _LayerState(recent)
            self._select_at_question(state, query, key, value, scaling, n_rep)
            return None  # the question itself reads the document densely
        state.recent = torch.cat([state.recent, recent], 2)[:, :, -self.settings.recent_queries:]
        state.steps += 1
        if self.settings.reselect_every and state.steps >= self.settings.reselect_every:
            state.steps = 0
            if self.settings.compress and self.settings.reselect == "blocks" and not self.settings.baseline:
                self._open_blocks(state, key, scaling)
            elif self.settings.compress:
                self._reselect(state, key, value, scaling, n_rep)
            else:
                self._add_relevance(attention_mass(state.recent, key, scaling, n_rep)[..., self.doc_start:self.doc_end])
        if not self.settings.compress:
            return None
        return self._decode(state, query, key, value, scaling, n_rep)

    # -- selection

    def _exact_region(self) -> tuple[int, int]:
        """(start, end) of the grouped region: the sinks before it and a remainder shorter than a group stay exact."""
        m = self.settings.group_size
        start = min(self.doc_start + self.settings.sinks, self.doc_end)
        end = start + (self.doc_end - start) // m * m
        return start, end

    def _select_at_question(self, state: _LayerState, query, key, value, scaling: float, n_rep: int) -> None:
        mass = attention_mass(query, key, scaling, n_rep)  # (B, H_kv, N), exact for every document token
        if not self.settings.compress:
            self._add_relevance(mass[..., self.doc_start:self.doc_end])
            return
        start, end = self._exact_region()
        batch, kv_heads = key.shape[:2]
        query_ref = state.recent.reshape(batch, kv_heads, -1, query.shape[-1]).mean(2)  # (B, H_kv, D)
        state.blocks = build_blocks(key, value, start, end, query_ref, self.settings, scaling)
        count = self._focal_count(end - start)
        if self.settings.baseline == "recent":  # the most recent tokens, whatever the question
            focal = torch.arange(end - start - count, end - start, device=key.device).expand(batch, kv_heads, -1)
        else:
            focal = pick_focal(mass[..., start:end], count, self.settings)
        self._install(state, focal, mass[..., start:end], key, value, scaling)

    def _focal_count(self, grouped: int) -> int:
        count = min(grouped, max(self.settings.min_focal, math.ceil(self.settings.gamma * self.doc_length)))
        if self.settings.baseline:  # same key budget as DGA, all of it exact tokens
            count = min(grouped, count + math.ceil((grouped - count) / self.settings.group_size))
        return count

    def _reselect(self, state: _LayerState, key, value, scaling: float, n_rep: int) -> None:
        """Rescore from the recent queries: rank blocks by their summary keys, then score exactly the tokens
        of the best blocks (and the block after each, for continuations) and pick the focal tokens there."""
        if self.settings.baseline == "recent":
            return
        blocks = state.blocks
        count = self._focal_count(blocks.count * blocks.size)
        batch, kv_heads, _, dim = key.shape
        queries = state.recent.reshape(batch, kv_heads, -1, dim).float()  # (B, H_kv, n_rep*n, D)
        block_logits = torch.einsum("bhqd,bhgd->bhqg", queries, blocks.ranking_keys) * scaling
        block_score = (block_logits + blocks.ranking_bias[:, :, None]).amax(2)  # (B, H_kv, b)
        block_score = follow_scores(block_score, 1)  # a strong block brings the next one along
        wanted = min(blocks.count, max(2 * math.ceil(count / blocks.size), 2))
        chosen = torch.topk(block_score, wanted, dim=-1).indices.sort(dim=-1).values  # (B, H_kv, C)
        index = chosen[..., None, None].expand(-1, -1, -1, blocks.size, dim)
        candidates = blocks.keys.gather(2, index).flatten(2, 3)  # (B, H_kv, C*m, D)
        logits = torch.einsum("bhqd,bhcd->bhqc", queries, candidates.float()) * scaling
        mass = torch.softmax(logits, -1).sum(2)  # (B, H_kv, C*m)
        positions = (chosen[..., None] * blocks.size + torch.arange(blocks.size, device=key.device)).flatten(2)
        local = pick_focal(mass, min(count, mass.shape[-1]), self.settings)
        focal = positions.gather(2, local)
        scores = torch.zeros(batch, kv_heads, blocks.count * blocks.size, device=key.device)
        scores.scatter_(2, positions, mass)
        self._install(state, focal, scores, key, value, scaling)

    def _rank_blocks(self, state: _LayerState, dim: int, scaling: float, wanted: int) -> torch.Tensor:
        """The ``wanted`` best blocks (B, H_kv, C) for the recent queries, by their summary keys, sorted."""
        blocks = state.blocks
        batch, kv_heads = blocks.keys.shape[:2]
        queries = state.recent.reshape(batch, kv_heads, -1, dim).float()  # (B, H_kv, n_rep*n, D)
        block_logits = torch.einsum("bhqd,bhgd->bhqg", queries, blocks.ranking_keys) * scaling
        block_score = (block_logits + blocks.ranking_bias[:, :, None]).amax(2)  # (B, H_kv, b)
        block_score = follow_scores(block_score, 1)  # a strong block brings the next one along
        return torch.topk(block_score, min(wanted, blocks.count), dim=-1).indices.sort(dim=-1).values

    def _open_blocks(self, state: _LayerState, key, scaling: float) -> None:
        """Re-open the best groups for the recent queries into their exact tokens (in a reserved region of the
        buffer), hiding those groups and any focal tokens they hold so nothing is counted twice."""
        blocks, buffer = state.blocks, state.buffer
        if blocks.count == 0 or self.settings.expand == 0:
            return
        chosen = self._rank_blocks(state, key.shape[-1], scaling, self.settings.expand)  # (B, H_kv, C)
        m, dim = blocks.size, key.shape[-1]
        index = chosen[..., None, None].expand(-1, -1, -1, m, dim)
        opened = slice(state.opened, state.opened + chosen.shape[-1] * m)
        opened_keys = blocks.keys.gather(2, index).flatten(2, 3)  # (B, H_kv, C*m, D)
        buffer.keys[:, :, opened] = opened_keys
        buffer.values[:, :, opened] = blocks.values.gather(2, index).flatten(2, 3)
        buffer.bias[:, :, opened] = 0
        is_open = torch.zeros_like(state.group_bias, dtype=torch.bool).scatter_(2, chosen, True)  # (B, H_kv, b)
        first_group = state.first_group
        buffer.bias[:, :, first_group:first_group + blocks.count] = state.group_bias.masked_fill(
            is_open, float("-inf")).to(buffer.bias.dtype)
        focal_block = (state.focal - blocks.start) // m
        hidden = is_open.gather(2, focal_block)  # focal tokens inside a re-opened block
        buffer.bias[:, :, first_group - focal_block.shape[-1]:first_group] = torch.zeros_like(hidden, dtype=buffer.bias.dtype).masked_fill(
            hidden, float("-inf"))
        # Relevance: how the recent queries spread over the re-opened tokens (an answer copying a passage).
        queries = state.recent.reshape(*opened_keys.shape[:2], -1, dim).float()
        mass = torch.softmax(torch.einsum("bhqd,bhcd->bhqc", queries, opened_keys.float()) * scaling, -1).sum(2)
        positions = (chosen[..., None] * m + torch.arange(m, device=key.device)).flatten(2) + blocks.start
        per_token = torch.zeros(self.doc_length, device=key.device)
        per_token.index_add_(0, (positions - self.doc_start).flatten(), mass.flatten())
        self._add_relevance(per_token)

    def _install(self, state: _LayerState, focal, scores, key, value, scaling: float) -> None:
        """Build the decode buffer from focal tokens (block-relative positions) and the folded blocks."""
        blocks = state.blocks
        focal_keys, focal_values, group_keys, group_values, bias = fold_blocks(blocks, focal, self.settings,
                                                                               scaling)
        start, end = self._exact_region()
        parts_k = [key[:, :, :start], focal_keys]
        parts_v = [value[:, :, :start], focal_values]
        parts_b = [bias.new_zeros(*bias.shape[:2], start + focal_keys.shape[2])]
        if not self.settings.baseline:
            parts_k.append(group_keys.to(key.dtype))
            parts_v.append(group_values.to(value.dtype))
            parts_b.append(bias)
        parts_k.append(key[:, :, end:self.doc_end])  # the remainder, shorter than a group
        parts_v.append(value[:, :, end:self.doc_end])
        parts_b.append(bias.new_zeros(*bias.shape[:2], self.doc_end - end))
        state.opened = sum(part.shape[2] for part in parts_k)
        state.first_group = start + focal_keys.shape[2]
        if self.settings.reselect == "blocks" and not self.settings.baseline and self.settings.reselect_every:
            reserved = min(self.settings.expand, blocks.count) * blocks.size  # room for re-opened blocks
            parts_k.append(key.new_zeros(*key.shape[:2], reserved, key.shape[3]))
            parts_v.append(value.new_zeros(*value.shape[:2], reserved, value.shape[3]))
            parts_b.append(bias.new_full((*bias.shape[:2], reserved), float("-inf")))
        state.group_bias = bias
        base = sum(part.shape[2] for part in parts_k)
        spare = key.shape[2] - self.doc_end + max(self.settings.reselect_every, 16) + 1
        parts_k.append(key.new_zeros(*key.shape[:2], spare, key.shape[3]))
        parts_v.append(value.new_zeros(*value.shape[:2], spare, value.shape[3]))
        parts_b.append(bias.new_zeros(*bias.shape[:2], spare))
        state.buffer = _Buffer(torch.cat(parts_k, 2), torch.cat(parts_v, 2),
                               torch.cat(parts_b, -1).to(key.dtype), base)
        state.focal = focal + start
        live_groups = 0 if self.settings.baseline else int(torch.isfinite(bias[0, 0]).sum())
        self.attended_keys = (start - self.doc_start) + focal.shape[-1] + live_groups + (self.doc_end - end)
        kept = torch.zeros_like(scores).scatter_(-1, focal, scores.gather(-1, focal))  # (B, H_kv, grouped)
        per_token = torch.zeros(self.doc_length, device=key.device)
        per_token[start - self.doc_start:end - self.doc_start] = kept.sum((0, 1))
        self._add_relevance(per_token)

    def _add_relevance(self, mass: torch.Tensor) -> None:
        per_token = mass.sum((0, 1)) if mass.dim() == 3 else mass
        per_token = per_token.float() / per_token.sum().clamp_min(1e-12)  # each selection weighs the same
        self.relevance = per_token if self.relevance is None else self.relevance + per_token
        self.selections += 1

    # -- decoding

    def _decode(self, state: _LayerState, query, key, value, scaling: float, n_rep: int):
        """One query (B, H, 1, D) over the buffer: kept prefix + focal + groups + remainder + tail."""
        batch, q_heads, q_len, dim = query.shape
        assert q_len == 1, "DGA decodes one token at a time"
        buffer = state.buffer
        valid = buffer.sync(key, value, self.doc_end)
        packed = query.reshape(batch, key.shape[1], n_rep, dim)  # GQA: the heads of a group share keys
        out = F.scaled_dot_product_attention(packed, buffer.keys[:, :, :valid], buffer.values[:, :, :valid],
                                             attn_mask=buffer.bias[:, :, None, :valid], scale=scaling)
        return out.reshape(batch, q_heads, 1, dim).transpose(1, 2)  # (B, 1, H, D)

    def token_relevance(self) -> torch.Tensor | None:
        return None if self.relevance is None else self.relevance / max(1, self.selections)


def dga_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                  **kwargs):
    """transformers attention interface: (B, H, q, D) query, (B, H_kv, kv, D) cache -> ((B, q, H, D), None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    run: DgaRun | None = kwargs.pop("dga_run", None)
    scaling = scaling if scaling is not None else query.shape[-1] ** -0.5
    if run is not None:
        output = run.attend(module, query, key, value, attention_mask, scaling)
        if output is not None:
            return output, None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)


_registered = False


def register() -> str:
    """Register the DGA attention function and its mask builder (SDPA's) with transformers, once."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        AttentionInterface.register(ATTENTION_NAME, dga_attention)
        AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
        _registered = True
    return ATTENTION_NAME


def enable(model) -> None:
    """Switch this model instance (only) to DGA; without a ``dga_run`` kwarg it behaves as SDPA."""
    model.set_attn_implementation(register())
