"""Attention math shared by every attention run (dga.py, dga_prefill.py, compaction.py, relevance scoring).

Shapes: B batch, H query heads, H_kv key/value heads (grouped-query attention: H = n_rep * H_kv), T queries,
N keys, D head size, G groups of at most m members.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BIASES = ("lse", "log_m", "none")
WEIGHTINGS = ("qref", "mean")


def head_dim(config) -> int:
    """The attention head size of a transformers config."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def scaling(config) -> float:
    """Softmax scaling 1/sqrt(D) (what transformers passes as ``scaling`` for Llama-like models)."""
    return head_dim(config) ** -0.5


def stack_queries(query: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """(B, H, T, D) -> (B, H_kv, n_rep*T, D): the query heads sharing a KV head attend to its keys together,
    so keys are never repeated for grouped-query attention."""
    batch, heads, length, dim = query.shape
    return query.reshape(batch, kv_heads, (heads // kv_heads) * length, dim)


def unstack_output(output: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, H_kv, n_rep*T, D) attention output -> (B, T, H, D), the layout transformers expects back."""
    batch, kv_heads, rows, dim = output.shape
    return output.reshape(batch, heads, kv_heads * rows // heads, dim).transpose(1, 2)


def future_mask(length: int, total: int, n_rep: int, device) -> torch.Tensor:
    """(n_rep*T, N) bool, True where a key lies after its query; the T queries are the last T of N positions
    (stacked as ``stack_queries`` does: n_rep copies of the T positions)."""
    query_pos = torch.arange(total - length, total, device=device).repeat(n_rep)
    return torch.arange(total, device=device)[None, :] > query_pos[:, None]


def layer_window(module) -> int | None:
    """The sliding window of an attention layer (its queries see the last ``window`` keys), None for a layer
    that sees every earlier key. Gemma 2/3 and Qwen set it per layer, Mistral and Phi-3 in the config."""
    if hasattr(module, "sliding_window"):
        return module.sliding_window
    return getattr(getattr(module, "config", None), "sliding_window", None)


def layer_softcap(module) -> float | None:
    """The attention logit soft-capping of a layer (Gemma 2: logits -> cap * tanh(logits / cap)), or None."""
    return getattr(module, "attn_logit_softcapping", None)


def sees_all(module, length: int) -> bool:
    """True when a query of this layer sees all of ``length`` keys (no sliding window narrower than that)."""
    window = layer_window(module)
    return window is None or window >= length


def capped(logits: torch.Tensor, softcap: float | None) -> torch.Tensor:
    """Soft-capped logits (Gemma 2), or the logits themselves."""
    return logits if softcap is None else torch.tanh(logits / softcap) * softcap


def masked(logits: torch.Tensor, mask: torch.Tensor | None, n_rep: int) -> torch.Tensor:
    """Stacked logits (B, H_kv, n_rep*T, N) with a transformers mask applied: bool (B, 1, T, N), True where a
    query may attend, or additive float; None means plainly causal (the queries are the last T positions)."""
    rows, total = logits.shape[2], logits.shape[3]
    if mask is None:
        if rows // n_rep == 1:
            return logits
        return logits.masked_fill(future_mask(rows // n_rep, total, n_rep, logits.device), float("-inf"))
    mask = mask[..., -total:].repeat(1, 1, n_rep, 1)  # the rows of ``stack_queries``: n_rep copies of T
    if mask.dtype == torch.bool:
        return logits.masked_fill(~mask, float("-inf"))
    return logits + mask.float()


def attention_mass(query: torch.Tensor, keys: torch.Tensor, scale: float, mask: torch.Tensor | None = None,
                   softcap: float | None = None) -> torch.Tensor:
    """Softmax of ``query`` (B, H, T, D) over ``keys`` (B, H_kv, N, D) under ``mask`` (see ``masked``; None:
    causal, the queries being the last T positions), soft-capped as the layer is; summed over the queries and
    the query heads of each KV head -> (B, H_kv, N), float32."""
    n_rep = query.shape[1] // keys.shape[1]
    stacked = stack_queries(query, keys.shape[1]).float()
    logits = capped(torch.einsum("bgqd,bgnd->bgqn", stacked, keys.float()) * scale, softcap)
    return torch.softmax(masked(logits, mask, n_rep), dim=-1).sum(2)


def eager_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                    scale: float, softcap: float | None) -> torch.Tensor:
    """Attention written out, for what SDPA cannot do (soft-capped logits): query (B, H, T, D), key/value
    (B, H_kv, N, D), ``mask`` as in ``masked``; returns (B, T, H, D). Softmax in float32, as the models do."""
    n_rep = query.shape[1] // key.shape[1]
    stacked = stack_queries(query, key.shape[1])
    logits = capped(torch.einsum("bgqd,bgnd->bgqn", stacked, key).float() * scale, softcap)
    weights = torch.softmax(masked(logits, mask, n_rep), dim=-1).to(value.dtype)
    return unstack_output(torch.einsum("bgqn,bgnd->bgqd", weights, value), query.shape[1])


def biased_attention(stacked: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor,
                     scale: float, softcap: float | None) -> torch.Tensor:
    """Stacked queries (B, H_kv, R, D) over keys/values (B, H_kv, N, D) with a per-key logit bias
    (B, H_kv, 1, N) added after any soft-capping; returns (B, H_kv, R, D)."""
    if softcap is None:
        return F.scaled_dot_product_attention(stacked, keys, values, attn_mask=bias, scale=scale)
    logits = capped(torch.einsum("bgqd,bgnd->bgqn", stacked, keys).float() * scale, softcap) + bias.float()
    return torch.einsum("bgqn,bgnd->bgqd", torch.softmax(logits, dim=-1).to(values.dtype), values)


def smooth_scores(scores: torch.Tensor, width: int) -> torch.Tensor:
    """Average-pool (B, H_kv, L) scores along L so neighbours of a strong token rise with it (odd width)."""
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


def top_positions(scores: torch.Tensor, count: int, smoothing: int, follow: int) -> torch.Tensor:
    """The ``count`` best positions (B, H_kv, count), sorted, after smoothing and follow-spreading ``scores``."""
    smoothed = smooth_scores(scores, smoothing)
    # A token inherits half of a strong predecessor's score: enough to keep what a copy needs next, not so much
    # that the tail of every strong phrase crowds out tokens that are relevant in their own right.
    ranked = torch.maximum(smoothed, 0.5 * follow_scores(smoothed, follow))
    return torch.topk(ranked, count, dim=-1).indices.sort(dim=-1).values


def fold_groups(keys: torch.Tensor, values: torch.Tensor, member: torch.Tensor, query_ref: torch.Tensor,
                scale: float, weighting: str = "qref", bias: str = "lse"):
    """Fold each group of members into one key/value and a logit bias (DGA's group tokens).

    ``keys``/``values`` (B, H_kv, G, m, D) hold the groups' candidate members, ``member`` (B, H_kv, G, m) says
    which belong (1) or were taken out (0, e.g. focal tokens kept exactly). Members are weighted by
    softmax(q_ref . k / sqrt(D)) ("qref") or equally ("mean"). The bias makes a group weigh like its members:
    "lse" matches the log-sum-exp of their logits at ``query_ref`` (B, H_kv, D), "log_m" adds log(members).
    One edge rule for everyone: a group without members gets -inf (never attended); a one-member group is that
    member exactly (bias 0). The sums are recomputed over the members rather than obtained by subtracting
    removed ones: subtraction cancels catastrophically when a group's weight sits on a removed token.
    Returns float32 group keys, values (B, H_kv, G, D) and bias (B, H_kv, G).
    """
    assert weighting in WEIGHTINGS and bias in BIASES, (weighting, bias)
    member = member.float()
    logits = torch.einsum("bhgmd,bhd->bhgm", keys.float(), query_ref.float()) * scale
    peak = logits.masked_fill(member == 0, float("-inf")).amax(-1).nan_to_num(neginf=0.0)  # (B, H_kv, G)
    expo = torch.where(member > 0, torch.exp(logits - peak[..., None]), torch.zeros_like(logits))
    weight = expo if weighting == "qref" else member
    total = weight.sum(-1).clamp_min(1e-30)[..., None]
    group_keys = torch.einsum("bhgm,bhgmd->bhgd", weight, keys.float()) / total
    group_values = torch.einsum("bhgm,bhgmd->bhgd", weight, values.float()) / total
    count = member.sum(-1)
    if bias == "lse":  # exp(q.k_group + bias) = sum over members of exp(q.k_j), at the reference query
        mean_logit = torch.einsum("bhgd,bhd->bhg", group_keys, query_ref.float()) * scale
        offset = torch.log(expo.sum(-1).clamp_min(1e-30)) + peak - mean_logit
    elif bias == "log_m":
        offset = torch.log(count.clamp_min(1.0))
    else:
        offset = torch.zeros_like(count)
    offset = torch.where(count == 1, torch.zeros_like(offset), offset)
    return group_keys, group_values, offset.masked_fill(count == 0, float("-inf"))


def rank_groups(queries: torch.Tensor, group_keys: torch.Tensor, group_bias: torch.Tensor, scale: float,
                wanted: int) -> torch.Tensor:
    """The ``wanted`` groups (B, H_kv, C), sorted, that ``queries`` (B, H_kv, n, D) attend to most through their
    summary keys (B, H_kv, G, D) and biases (B, H_kv, G); a strong group brings the next one along."""
    logits = torch.einsum("bhqd,bhgd->bhqg", queries.float(), group_keys.float()) * scale
    score = follow_scores((logits + group_bias[:, :, None]).amax(2), 1)
    return torch.topk(score, min(wanted, score.shape[-1]), dim=-1).indices.sort(dim=-1).values
