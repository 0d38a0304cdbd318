"""Prefill-time DGA: read a long document in chunks without attending to all of it from every chunk.

Each chunk's queries attend exactly to

* the sinks: the chat head and the first ``sinks`` document tokens,
* a local window: the ``window`` tokens right before the chunk (plus the raw tokens of an incomplete last
  block, the "complementary" tokens, so the older region ends on a block boundary),
* the chunk itself, causally,

and see the older text in between only through

* focal tokens: per layer and KV head, the top ``gamma`` fraction of the old region by the attention mass of
  a sample of the chunk's queries (``score_queries`` of them, strided over the chunk), kept exactly;
* group tokens: the rest of the old region in fixed blocks of ``group_size``, each block minus its focal
  members folded into one key/value (weights: softmax at the sampled queries' mean, the reference query) plus
  a log-sum-exp logit bias so that a group stands for the attention mass of its members (engine/attention/dga.py).

So a chunk attends to about ``sinks + window + chunk + (gamma + 1/m) * old`` keys instead of all of them.
Without an old region (a short cache) the layer is plain causal SDPA, and ``gamma=1`` reproduces dense
prefill. One ``scaled_dot_product_attention`` call per layer and chunk: queries of a KV head's group are
stacked (B, H_kv, n_rep*q, D) so keys are never repeated, and one additive float mask per chunk (causal
triangle over the chunk's own keys, the groups' bias in their columns; only those columns change per layer).

Usage (the model must have had ``engine.attention.contract.enable(model)``, as ``Engine.load`` does)::

    logits = prefill_dga(model, ids, cache, PrefillSettings(), doc_start=len(layout.head_ids))

The cache it produces differs from a dense prefill's (later tokens were computed from a compressed view of
older text), so anything that stores document states must key them by these settings (``PrefillSettings.tag``).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..model import generation
from ..options import SettingsError
from . import dga, ops
from .contract import AttentionRun


@dataclass
class PrefillSettings:
    """Prefill-time DGA knobs; defaults measured with ``python -m bench --only prefill`` (see bench/prefill.py)."""

    chunk: int = 512  # tokens per forward pass (also generation.PREFILL_CHUNK)
    window: int = 512  # exact local window before each chunk (the chunk itself is always exact)
    gamma: float = 0.1  # fraction of the old region kept exactly per layer and KV head (focal tokens)
    group_size: int = 16  # m: the rest of the old region is folded into blocks of this many
    sinks: int = 4  # leading document tokens always exact (the chat head before them always is)
    score_queries: int = 32  # chunk queries (per head), spread over the chunk, whose attention mass picks focal tokens
    smoothing: int = 3  # as DgaSettings: average pooling of scores so phrases stay whole
    follow: int = 8  # as DgaSettings: the tokens after a strong token inherit half its score

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise SettingsError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.chunk < 1 or self.window < 0 or self.group_size < 1 or self.sinks < 0 or self.score_queries < 1:
            raise SettingsError("chunk, group_size and score_queries must be >= 1, window and sinks >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    def tag(self) -> str:
        """A short string that identifies the cache these settings produce (for state-cache keys)."""
        return (f"dga-prefill:c{self.chunk}w{self.window}g{self.gamma}m{self.group_size}s{self.sinks}"
                f"q{self.score_queries}ssm{self.smoothing}f{self.follow}")

    def dga_settings(self) -> dga.DgaSettings:
        """The engine/attention/dga.py settings its helpers (build_blocks, fold_blocks) read."""
        return dga.DgaSettings(gamma=self.gamma, group_size=self.group_size, sinks=self.sinks, min_focal=0,
                               smoothing=self.smoothing, follow=self.follow, weighting="qref", bias="lse")


@dataclass
class PrefillRun(AttentionRun):
    """State of one DGA prefill: the AttentionRun of every prefill chunk (engine/attention/contract.py).

    ``doc_start`` is the cache position of the first document token: everything before it (the chat head)
    and the first ``sinks`` document tokens are always attended exactly.
    """

    settings: PrefillSettings
    doc_start: int = 0
    calls: int = 0  # layer-chunk calls seen
    compressed_calls: int = 0  # calls that attended a compressed view (the others were plain SDPA)
    dense_keys: int = 0  # sum over compressed calls of the keys dense attention would have used
    _helper: dga.DgaSettings | None = field(default=None, repr=False)
    _mask: torch.Tensor | None = field(default=None, repr=False)
    _mask_key: tuple | None = field(default=None, repr=False)
    _sample: dict = field(default_factory=dict, repr=False)  # (chunk length, device) -> scoring query positions
    # Keys attended per compressed call, as device tensors: int() in every layer call would wait for the device.
    _live: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._helper = self.settings.dga_settings()

    @property
    def max_keys(self) -> int:
        """Most keys one chunk's queries attended to in a compressed call."""
        return max(int(live) for live in self._live) if self._live else 0

    @property
    def attended_keys(self) -> int:
        """Sum over compressed calls of the keys attended (compare ``dense_keys``)."""
        return sum(int(live) for live in self._live)

    def attended_fraction(self) -> float:
        """Keys attended / keys dense attention would use, over the compressed calls (1.0 if none)."""
        return round(self.attended_keys / self.dense_keys, 4) if self.dense_keys else 1.0

    def regions(self, total: int, chunk: int) -> tuple[int, int, int]:
        """(sinks_end, old_end, blocks) for a cache of ``total`` positions whose last ``chunk`` are the
        current queries: the old region is [sinks_end, old_end) = ``blocks`` whole blocks, and ends at least
        ``window`` tokens before the chunk."""
        s = self.settings
        past = total - chunk
        sinks_end = min(self.doc_start + s.sinks, past)
        blocks = max(0, (past - s.window - sinks_end) // s.group_size)
        return sinks_end, sinks_end + blocks * s.group_size, blocks

    def attend(self, module, query, key, value, attention_mask, scaling: float, phase: str):
        """Output (B, q, H, D) of one layer for one chunk, or None where plain causal SDPA is exact."""
        if phase != "prefill":
            return None
        self.calls += 1
        batch, q_heads, length, dim = query.shape
        kv_heads, total = key.shape[1], key.shape[2]
        if not ops.sees_all(module, total) or ops.layer_softcap(module) is not None:
            return None  # a sliding-window layer reads only its window; soft-capped logits: the model's own way
        n_rep = q_heads // kv_heads
        sinks_end, old_end, blocks = self.regions(total, length)
        if blocks == 0:
            return None
        old = old_end - sinks_end
        focal_count = min(old, math.ceil(self.settings.gamma * old))

        # Score the old region with a sample of the chunk's queries (softmax over every key they may see).
        index = self._sample_index(length, query.device)
        grouped = ops.stack_queries(query.index_select(2, index), kv_heads)  # (B, H_kv, n_rep*n, D)
        logits = torch.matmul(grouped, key.transpose(2, 3)).float() * scaling  # (B, H_kv, n_rep*n, N)
        positions = index + (total - length)
        future = torch.arange(total - length, total, device=key.device)[None, :] > positions[:, None]
        logits[..., total - length:].masked_fill_(future.repeat(n_rep, 1), float("-inf"))
        mass = torch.softmax(logits, dim=-1)[..., sinks_end:old_end].sum(2)  # (B, H_kv, old)

        # Focal tokens and groups (engine/attention/dga.py), at the sampled queries' mean as reference query.
        query_ref = grouped.float().mean(2)  # (B, H_kv, D)
        focal = ops.top_positions(mass, focal_count, self._helper.smoothing, self._helper.follow)
        if focal_count == old:  # everything exact: no groups to fold
            focal_keys, focal_values = key[:, :, sinks_end:old_end], value[:, :, sinks_end:old_end]
            group_keys = key.new_zeros(batch, kv_heads, 0, dim)
            group_values, bias = group_keys, key.new_zeros(batch, kv_heads, 0)
        else:
            built = dga.build_blocks(key, value, sinks_end, old_end, query_ref, self._helper, scaling)
            focal_keys, focal_values, group_keys, group_values, bias = dga.fold_blocks(built, focal, self._helper,
                                                                                       scaling)
        # Keys: [sinks | focal | complementary + window + chunk | groups]; the chunk's causal triangle and
        # the groups' bias are the only non-zero mask entries.
        keys = torch.cat([key[:, :, :sinks_end], focal_keys, key[:, :, old_end:], group_keys.to(key.dtype)], 2)
        values = torch.cat([value[:, :, :sinks_end], focal_values, value[:, :, old_end:],
                            group_values.to(value.dtype)], 2)
        mask = self._chunk_mask(batch, kv_heads, n_rep, length, keys.shape[2], bias.shape[-1], query)
        if bias.shape[-1]:
            mask[..., -bias.shape[-1]:] = bias[:, :, None, :].to(mask.dtype)
        stacked = ops.stack_queries(query, kv_heads)  # GQA: a KV head's queries share keys
        out = F.scaled_dot_product_attention(stacked, keys, values, attn_mask=mask, scale=scaling)

        self._live.append(keys.shape[2] - (bias[0, 0] == float("-inf")).sum() if bias.numel() else keys.shape[2])
        self.compressed_calls += 1
        self.dense_keys += total
        return ops.unstack_output(out, q_heads)  # (B, q, H, D)

    def _sample_index(self, length: int, device) -> torch.Tensor:
        """``score_queries`` positions spread evenly over the chunk, its last query always included (made once
        per chunk length: a host-to-device copy in every layer call would wait for the device)."""
        if (length, device) not in self._sample:
            n = min(self.settings.score_queries, length)
            step = length / n
            positions = sorted({length - 1 - int(i * step) for i in range(n)})
            self._sample[(length, device)] = torch.tensor(positions, device=device)
        return self._sample[(length, device)]

    def _chunk_mask(self, batch, kv_heads, n_rep, length, keys, groups, like) -> torch.Tensor:
        """(B, H_kv, n_rep*q, keys) additive mask, made once per chunk and shared by its layers: zero except
        -inf above the diagonal in the chunk's own columns (just before the ``groups`` last columns)."""
        signature = (batch, kv_heads, n_rep, length, keys, groups, like.dtype, like.device)
        if self._mask_key != signature:
            mask = torch.zeros(batch, kv_heads, n_rep, length, keys, dtype=like.dtype, device=like.device)
            chunk_end = keys - groups
            future = torch.ones(length, length, dtype=torch.bool, device=like.device).triu(1)
            mask[..., chunk_end - length:chunk_end].masked_fill_(future, float("-inf"))
            self._mask = mask.view(batch, kv_heads, n_rep * length, keys)
            self._mask_key = signature
        return self._mask


def prefill_dga(model, ids, cache, settings: PrefillSettings | None = None, doc_start: int = 0,
                progress: Callable[[int, int], None] | None = None,
                should_stop: generation.ShouldStop | None = None, run: PrefillRun | None = None) -> torch.Tensor:
    """``generation.prefill`` in chunks of ``settings.chunk`` with prefill-time DGA; returns the last logits (V,).

    Pass ``run`` to read its statistics afterwards (attended_fraction, max_keys); raises
    engine.errors.CancelledError when ``should_stop`` says so between chunks.
    """
    settings = settings or PrefillSettings()
    run = run or PrefillRun(settings, doc_start)
    return generation.prefill(model, ids, cache, run=run, chunk_size=settings.chunk,
                              progress=progress, should_stop=should_stop)
