"""Where a model's keys carry their positions, and moving stored keys from one position to another.

A RoPE model stores each key rotated by its position: key(p) = R(p) k, R(p) a rotation by angles p * f per pair
of channels. Moving a stored key from position p to q is one more rotation, by the angles of q minus those of
p, so a passage read anywhere can be placed right after the chat head without reading it again
(engine/attention/compaction.py).

Each layer is moved with its own rotation, taken from the model's own rotary embedding module (its ``forward``
gives the cos/sin a layer applies at given positions): Gemma 2/3 give their sliding-window layers and their
global layers different bases (one module, a ``layer_type`` argument), Llama 3.x and Qwen scale their
frequencies (llama3, yarn, linear: all inside the module), Phi-3/4 rotate only part of each head
(``partial_rotary_factor``: the cos/sin are narrower than the head), SmolLM3 leaves some layers without RoPE
(``no_rope_layers``: nothing to move). A scaling factor the module multiplies cos and sin by (yarn, longrope)
is already in the stored key and cancels out of the move.

A model whose positions are not such rotations (absolute position embeddings, ALiBi, an interleaved channel
layout) cannot have its keys moved: ``rotary_positions`` says so with a ``DocFocusError``, and the engine answers
from the part of the document that fits its window instead.

Limits: "dynamic" and "longrope" scaling pick their frequencies from the length of each forward pass, so a key
moved past the length where they switch is only as exact as the model's own chunked reading.
"""
from __future__ import annotations

import inspect
import weakref

import torch

from ..errors import DocFocusError

_FIXED = (("This model's position encoding cannot be re-positioned, so it reads only the part of a document that "
           "fits its window."),
          "Use a RoPE model (Llama, Qwen, Mistral, Gemma, Phi, SmolLM...) to read all of it.")
_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class RotaryPositions:
    """Per layer, the rotary embedding module and its layer type (None: a layer without RoPE); moves keys
    (B, H_kv, N, D) between positions with that layer's own rotation of the first R <= D channels."""

    def __init__(self, rotary: torch.nn.Module, layer_kinds: list[str | None], takes_layer_type: bool,
                 head_dim: int) -> None:
        self.rotary = rotary
        self.layer_kinds = layer_kinds  # per layer: its rotary kind ("default" or a layer type), None for no RoPE
        self.takes_layer_type = takes_layer_type
        self.head_dim = head_dim

    @property
    def layers(self) -> int:
        return len(self.layer_kinds)

    def angles(self, kind: str, positions: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin), each (N, R) float32, of the rotation the model applies at ``positions`` (N,) for layers
        of this kind, with any scaling factor the module applies (yarn, longrope) included."""
        probe = torch.empty(0, dtype=torch.float32, device=device)
        position_ids = positions.to(device=device, dtype=torch.long)[None, :]  # (1, N)
        with torch.no_grad():
            if self.takes_layer_type:
                cos, sin = self.rotary(probe, position_ids, kind)
            else:
                cos, sin = self.rotary(probe, position_ids)
        return cos[0].float(), sin[0].float()

    def move(self, layer: int, keys: torch.Tensor, source: torch.Tensor, target: torch.Tensor,
             angles: dict | None = None) -> torch.Tensor:
        """Keys (..., N, D) of ``layer`` read at positions ``source`` (N,) as the model would have them at
        ``target`` (N,), float32. ``angles`` memoises the rotations of each kind between calls of one move."""
        kind = self.layer_kinds[layer]
        if kind is None:  # no RoPE in this layer: keys do not depend on their position
            return keys.float()
        angles = {} if angles is None else angles
        if (kind, keys.device) not in angles:  # layers may sit on several devices (device_map="auto")
            angles[kind, keys.device] = self._turn(kind, source, target, keys.device)
        cos, sin = angles[kind, keys.device]  # (N, R)
        return rotate_half_layout(keys.float(), cos, sin)

    def move_layers(self, keys: list[torch.Tensor], source: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """``move`` for every layer's keys (per layer (B, H_kv, N, D)), each back in its own dtype."""
        angles: dict = {}
        return [self.move(layer, k, source, target, angles).to(k.dtype) for layer, k in enumerate(keys)]

    def _turn(self, kind: str, source, target, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) (N, R) of the rotation by angle(target) - angle(source), scale removed."""
        cos_s, sin_s = self.angles(kind, source, device)
        cos_t, sin_t = self.angles(kind, target, device)
        scale = cos_s * cos_s + sin_s * sin_s  # the module's scaling factor, squared (1 for plain RoPE)
        return (cos_t * cos_s + sin_t * sin_s) / scale, (sin_t * cos_s - cos_t * sin_s) / scale


def rotate_half_layout(keys: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first R channels of ``keys`` (..., N, D) by (cos, sin) (N, R) in transformers' rotate_half
    layout (channel i pairs with i + R/2); the other D - R channels (partial rotary) stay."""
    width = cos.shape[-1]
    turned, kept = keys[..., :width], keys[..., width:]
    half = width // 2
    paired = torch.cat([-turned[..., half:], turned[..., :half]], -1)
    return torch.cat([turned * cos + paired * sin, kept], -1)


def rotary_positions(model) -> RotaryPositions:
    """How ``model``'s layers encode positions (made once per model), or a ``DocFocusError`` when its keys
    cannot be moved."""
    if model not in _known:
        _known[model] = _probe(model)
    found = _known[model]
    if found is None:
        raise DocFocusError(*_FIXED)
    return found


def can_move(model) -> bool:
    """True when ``model``'s keys can be moved to other positions (``rotary_positions`` succeeds)."""
    try:
        rotary_positions(model)
    except DocFocusError:
        return False
    return True


def _probe(model) -> RotaryPositions | None:
    """The model's rotary positions, checked: every kind gives a pure rotation in the rotate_half layout that
    fits the head; None otherwise."""
    config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
    rotary = _rotary_module(model)
    if rotary is None:
        return None
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    layers = config.num_hidden_layers
    types = list(getattr(config, "layer_types", None) or ["default"] * layers)
    takes_type = "layer_type" in inspect.signature(rotary.forward).parameters
    without = getattr(config, "no_rope_layers", None) or [1] * layers  # SmolLM3, Llama 4: 0 = no RoPE there
    kinds = [(types[i] if takes_type else "default") if without[i] else None for i in range(layers)]
    found = RotaryPositions(rotary, kinds, takes_type, head_dim)
    device = next(model.parameters()).device
    try:
        return found if all(_is_rotation(found, kind, device) for kind in set(kinds) - {None}) else None
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError):
        return None


def _rotary_module(model) -> torch.nn.Module | None:
    try:
        decoder = model.get_decoder()
    except AttributeError:
        return None
    rotary = getattr(decoder, "rotary_emb", None)
    return rotary if isinstance(rotary, torch.nn.Module) else None


def _is_rotation(found: RotaryPositions, kind: str, device) -> bool:
    """Position 0 turns nothing, and the channels pair as rotate_half pairs them (i with i + R/2)."""
    cos, sin = found.angles(kind, torch.tensor([0, 7]), device)
    width = cos.shape[-1]
    if width % 2 or width > found.head_dim or width == 0:
        return False
    half = width // 2
    paired = torch.allclose(cos[:, :half], cos[:, half:]) and torch.allclose(sin[:, :half], sin[:, half:])
    return paired and bool(sin[0].abs().max() < 1e-6) and bool((cos[0] > 0).all())
