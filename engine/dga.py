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

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

ATTENTION_NAME = "docfocus_dga"
WEIGHTINGS = ("qref", "score", "mean")
BIASES = ("lse", "log_m", "none")


@dataclass
class DgaSettings:
    """DGA knobs; defaults were picked by ``python -m bench`` (see README)."""

    gamma: float = 0.1  # fraction of document tokens kept exactly, per layer and KV head
    group_size: int = 16  # m: other tokens are folded into groups of this many
    reselect_every: int = 4  # r: rescore and reselect after this many generated tokens (0: never)
    recent_queries: int = 8  # queries (per head) that score the document when reselecting
    sinks: int = 4  # leading document tokens always kept (the chat head before them always is)
    smoothing: int = 3  # width of the average pooling over scores, so phrases stay whole (1: none)
    weighting: str = "qref"  # group member weights: softmax at the reference query, attention mass, or mean
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
        if self.baseline not in ("", "evict", "recent"):
            raise ValueError(f"unknown baseline {self.baseline!r}")
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise ValueError("smoothing must be an odd width >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Selection:
    """One layer's compressed document: (B, H_kv, S, D) keys/values and (B, H_kv, S) logit bias."""

    keys: torch.Tensor
    values: torch.Tensor
    bias: torch.Tensor
    focal: torch.Tensor  # (B, H_kv, k) document positions kept exactly, sorted


def smooth_scores(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Average-pool (B, H_kv, L) scores along L so neighbours of a strong token rise with it."""
    if width <= 1:
        return scores
    batch, heads, length = scores.shape
    pooled = F.avg_pool1d(scores.reshape(batch * heads, 1, length), width, stride=1, padding=width // 2,
                          count_include_pad=False)
    return pooled.reshape(batch, heads, length)


def select(keys: torch.Tensor, values: torch.Tensor, scores: torch.Tensor, query_ref: torch.Tensor,
           settings: DgaSettings, scaling: float) -> Selection:
    """Build focal tokens and groups for one layer.

    keys, values: (B, H_kv, L, D) document part of the cache; scores: (B, H_kv, L) attention mass;
    query_ref: (B, H_kv, D) reference query for group weights and the log-sum-exp bias.
    """
    batch, heads, length, dim = keys.shape
    assert scores.shape == (batch, heads, length) and query_ref.shape == (batch, heads, dim)
    n_focal = min(length, math.ceil(settings.gamma * length))
    ranked = smooth_scores(scores, settings.smoothing).clone()
    ranked[..., : min(settings.sinks, length)] = float("inf")  # sinks are always focal
    positions = torch.arange(length, device=keys.device)
    if settings.baseline:
        return _baseline(keys, values, ranked, n_focal + math.ceil((length - n_focal) / settings.group_size),
                         settings)
    focal = torch.topk(ranked, n_focal, dim=-1).indices.sort(dim=-1).values if n_focal else (
        torch.empty(batch, heads, 0, dtype=torch.long, device=keys.device))
    is_focal = torch.zeros(batch, heads, length, dtype=torch.bool, device=keys.device)
    is_focal.scatter_(-1, focal, True)
    # Non-focal positions in document order: sort by (is_focal, position) and take the first L - k.
    rest = torch.argsort(is_focal.long() * length + positions, dim=-1)[..., : length - n_focal]
    focal_keys = keys.gather(2, focal[..., None].expand(-1, -1, -1, dim))  # (B, H_kv, k, D)
    focal_values = values.gather(2, focal[..., None].expand(-1, -1, -1, dim))
    group_keys, group_values, group_bias = _fold_groups(keys, values, scores, query_ref, rest, settings, scaling)
    bias = torch.cat([torch.zeros(batch, heads, n_focal, dtype=keys.dtype, device=keys.device), group_bias], -1)
    return Selection(torch.cat([focal_keys, group_keys], 2), torch.cat([focal_values, group_values], 2), bias,
                     focal)


def _baseline(keys, values, ranked, budget: int, settings: DgaSettings) -> Selection:
    """Keep ``budget`` tokens exactly and drop the rest: the top-ranked ones, or sinks + most recent."""
    batch, heads, length, dim = keys.shape
    if settings.baseline == "evict":
        kept = torch.topk(ranked, budget, dim=-1).indices.sort(dim=-1).values
    else:
        sinks = min(settings.sinks, budget)
        order = torch.cat([torch.arange(sinks), torch.arange(length - budget + sinks, length)]).to(keys.device)
        kept = order.expand(batch, heads, -1)
    index = kept[..., None].expand(-1, -1, -1, dim)
    return Selection(keys.gather(2, index), values.gather(2, index), keys.new_zeros(batch, heads, budget), kept)


def _fold_groups(keys, values, scores, query_ref, rest, settings: DgaSettings, scaling: float):
    """Groups of m consecutive non-focal tokens -> (B, H_kv, G, D) keys/values and (B, H_kv, G) bias."""
    batch, heads, _, dim = keys.shape
    count = rest.shape[-1]
    m = settings.group_size
    if count == 0:
        empty = keys.new_zeros(batch, heads, 0, dim)
        return empty, empty.clone(), keys.new_zeros(batch, heads, 0)
    groups = math.ceil(count / m)
    pad = groups * m - count
    valid = torch.ones(batch, heads, count, dtype=torch.bool, device=keys.device)
    if pad:  # the last group is short: pad with copies that get zero weight
        rest = torch.cat([rest, rest[..., -1:].expand(-1, -1, pad)], -1)
        valid = torch.cat([valid, valid.new_zeros(batch, heads, pad)], -1)
    index = rest[..., None].expand(-1, -1, -1, dim)
    member_keys = keys.gather(2, index).view(batch, heads, groups, m, dim)  # (B, H_kv, G, m, D)
    member_values = values.gather(2, index).view(batch, heads, groups, m, dim)
    valid = valid.view(batch, heads, groups, m)
    ref_logits = torch.einsum("bhgmd,bhd->bhgm", member_keys.float(), query_ref.float()) * scaling
    ref_logits = ref_logits.masked_fill(~valid, float("-inf"))
    if settings.weighting == "qref":
        weights = torch.softmax(ref_logits, dim=-1)
    elif settings.weighting == "score":
        mass = scores.gather(2, rest).view(batch, heads, groups, m).float().clamp_min(1e-12) * valid
        weights = mass / mass.sum(-1, keepdim=True)
    else:
        weights = valid.float() / valid.sum(-1, keepdim=True)
    weights = weights.to(keys.dtype)[..., None]
    group_keys = (weights * member_keys).sum(3)  # (B, H_kv, G, D)
    group_values = (weights * member_values).sum(3)
    if settings.bias == "lse":
        # exp(q.k_group + b) = sum_j exp(q.k_j) at the reference query: the group weighs as much as its members
        mean_logit = torch.einsum("bhgd,bhd->bhg", group_keys.float(), query_ref.float()) * scaling
        bias = torch.logsumexp(ref_logits, -1) - mean_logit
    elif settings.bias == "log_m":
        bias = valid.sum(-1).float().log()
    else:
        bias = torch.zeros(batch, heads, groups, device=keys.device)
    return group_keys, group_values, bias.to(keys.dtype)


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
class _LayerState:
    recent: torch.Tensor  # (B, H, n, D) most recent queries
    selection: Selection | None = None
    steps: int = 0


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
        """Attention output (B, q, H, D) for one layer call in the question or decode phase."""
        layer = module.layer_idx
        n_rep = query.shape[1] // key.shape[1]
        state = self.layers.get(layer)
        recent = query[:, :, -self.settings.recent_queries:].detach()
        if state is None or self.phase == "question":
            state = self.layers[layer] = _LayerState(recent)
            self._reselect(state, layer, query, key, value, scaling, n_rep)
        else:
            state.recent = torch.cat([state.recent, recent], 2)[:, :, -self.settings.recent_queries:]
            state.steps += 1
            if self.settings.reselect_every and state.steps >= self.settings.reselect_every:
                self._reselect(state, layer, state.recent, key, value, scaling, n_rep)
        if self.phase == "question" or not self.settings.compress:
            return None  # the caller runs plain SDPA over the whole cache
        return self._decode(state.selection, query, key, value, scaling, n_rep)

    def _reselect(self, state: _LayerState, layer: int, queries, key, value, scaling: float, n_rep: int) -> None:
        start, end = self.doc_start, self.doc_end
        # The queries are always the last positions of the cache (question, then recent generated tokens).
        mass = attention_mass(queries, key, scaling, n_rep)[..., start:end]  # (B, H_kv, L)
        state.steps = 0
        self._add_relevance(mass)
        if not self.settings.compress:
            return
        batch, kv_heads = key.shape[:2]
        query_ref = queries.reshape(batch, kv_heads, -1, queries.shape[-1]).mean(2)  # (B, H_kv, D)
        selection = select(key[:, :, start:end], value[:, :, start:end], mass, query_ref, self.settings, scaling)
        head_keys = key[:, :, :start]
        state.selection = Selection(torch.cat([head_keys, selection.keys], 2),
                                    torch.cat([value[:, :, :start], selection.values], 2),
                                    torch.cat([selection.bias.new_zeros(*selection.bias.shape[:2], start),
                                               selection.bias], -1), selection.focal)
        self.attended_keys = selection.keys.shape[2]
        self._add_focal_relevance(mass, selection.focal)

    def _add_relevance(self, mass: torch.Tensor) -> None:
        if not self.settings.compress:  # dense mode: relevance is the attention mass itself
            self._accumulate(mass.sum((0, 1)))

    def _add_focal_relevance(self, mass: torch.Tensor, focal: torch.Tensor) -> None:
        kept = torch.zeros_like(mass).scatter_(-1, focal, mass.gather(-1, focal))
        self._accumulate(kept.sum((0, 1)))

    def _accumulate(self, per_token: torch.Tensor) -> None:
        per_token = per_token.float() / per_token.sum().clamp_min(1e-12)  # each selection weighs the same
        self.relevance = per_token if self.relevance is None else self.relevance + per_token
        self.selections += 1

    def _decode(self, selection: Selection, query, key, value, scaling: float, n_rep: int):
        """One query (B, H, 1, D) over head + focal + groups + tail (question and generated tokens)."""
        batch, q_heads, q_len, dim = query.shape
        assert q_len == 1, "DGA decodes one token at a time"
        tail = self.doc_end
        keys = torch.cat([selection.keys, key[:, :, tail:]], 2)  # (B, H_kv, S, D)
        values = torch.cat([selection.values, value[:, :, tail:]], 2)
        bias = torch.cat([selection.bias, selection.bias.new_zeros(batch, key.shape[1], key.shape[2] - tail)], -1)
        packed = query.reshape(batch, key.shape[1], n_rep, dim)  # GQA: the heads of a group share keys
        out = F.scaled_dot_product_attention(packed, keys, values, attn_mask=bias[:, :, None, :].to(query.dtype),
                                             scale=scaling)
        return out.view(batch, q_heads, 1, dim).transpose(1, 2)  # (B, 1, H, D)

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
