"""How a document state's tensors become chunk rows (bytes with shape, dtype, byte count, CRC-32) and back.

Storage formats:
- ``model``: the model's own dtype, bit-exact;
- ``fp16``: float16 (half of an fp32 CPU model's size; same as ``model`` on GPU);
- ``int8``: symmetric 8-bit with one float16 scale per block of 64 values: keys
  per channel over 64-token blocks (key outliers live in channels), values per
  token over the head dimension. About 53% of fp16.
"""
from __future__ import annotations

import json
import zlib

import torch

FORMATS = ("model", "fp16", "int8")
DEFAULT_FORMAT = "model"
CHUNK_BYTES = 4 * 1024 * 1024  # far below SQLite's BLOB limit
QUANT_BLOCK = 64  # values sharing one int8 scale

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                 "float64": torch.float64, "int8": torch.int8}


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _raw_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes()


def _from_bytes(data: bytes, dtype: str, shape: list[int]) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=_TORCH_DTYPES[dtype]).view(shape)


def quantize_int8(tensor: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one fp16 scale per block of QUANT_BLOCK values along ``axis`` (2: tokens, 3: channels).

    tensor (1, H, T, D) -> (q int8 (1, H, T, D), scales fp16 (1, H, ceil(T/64), D) or (1, H, T, ceil(D/64))).
    """
    x = tensor.detach().float().cpu()
    size = x.shape[axis]
    pad = (-size) % QUANT_BLOCK
    moved = x.movedim(axis, -1)  # (..., N)
    if pad:
        moved = torch.nn.functional.pad(moved, (0, pad))
    blocks = moved.reshape(*moved.shape[:-1], -1, QUANT_BLOCK)  # (..., N/64, 64)
    scales = (blocks.abs().amax(-1, keepdim=True) / 127.0).to(torch.float16).float()
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = torch.clamp(torch.round(blocks / safe), -127, 127).to(torch.int8)
    q = q.reshape(*moved.shape)[..., :size].movedim(-1, axis).contiguous()
    return q, scales.squeeze(-1).to(torch.float16).movedim(-1, axis).contiguous()


def dequantize_int8(q: torch.Tensor, scales: torch.Tensor, axis: int) -> torch.Tensor:
    """Inverse of ``quantize_int8`` (float32)."""
    expanded = scales.float().repeat_interleave(QUANT_BLOCK, dim=axis)
    expanded = expanded.narrow(axis, 0, q.shape[axis])
    return q.float() * expanded


def _axis(kind: str) -> int:
    return 2 if kind == "k" else 3  # keys: per channel over token blocks; values: per token over channels


def encode_chunk(tensor: torch.Tensor, kind: str, storage_format: str) -> dict:
    """One (1, H, T, D) slice -> a chunk row without its ids (data, scales, shape, dtype, nbytes, checksum)."""
    scales = b""
    if storage_format == "int8":
        q, s = quantize_int8(tensor, _axis(kind))
        data, dtype, scales = _raw_bytes(q), "int8", _raw_bytes(s)
    elif storage_format == "fp16":
        data, dtype = _raw_bytes(tensor.to(torch.float16)), "float16"
    else:
        data, dtype = _raw_bytes(tensor), dtype_name(tensor.dtype)
    return {"shape": json.dumps(list(tensor.shape)), "dtype": dtype, "nbytes": len(data) + len(scales),
            "checksum": zlib.crc32(scales, zlib.crc32(data)), "data": data, "scales": scales}


def chunk_is_intact(row: dict) -> bool:
    """Whether a stored chunk still has its recorded byte count and CRC-32."""
    data, scales = row["data"] or b"", row["scales"] or b""
    if not isinstance(data, bytes) or not isinstance(scales, bytes):
        return False
    return len(data) + len(scales) == row["nbytes"] and zlib.crc32(scales, zlib.crc32(data)) == row["checksum"]


class ChunkUnreadable(ValueError):
    """A stored chunk whose bytes, dtype or shape do not make a tensor (crafted or damaged, checksum or not)."""


def decode_chunk(row: dict, model_dtype: torch.dtype) -> torch.Tensor:
    """A chunk row -> its (1, H, T, D) tensor in ``model_dtype``; ChunkUnreadable when the row does not describe
    one: an unknown dtype or kind, a shape that is not four sizes, a byte count that does not match them."""
    shape, dtype = _shape(row.get("shape")), row.get("dtype")
    if dtype not in _TORCH_DTYPES:
        raise ChunkUnreadable(f"unknown dtype {str(dtype)[:20]!r}")
    if row.get("kind") not in ("k", "v"):
        raise ChunkUnreadable(f"unknown kind {str(row.get('kind'))[:20]!r}")
    data, scales = row.get("data") or b"", row.get("scales") or b""
    if dtype != "int8":
        return _from_bytes(_sized(data, shape, dtype, "data"), dtype, shape).to(model_dtype)
    axis = _axis(row["kind"])
    scale_shape = list(shape)
    scale_shape[axis] = -(-shape[axis] // QUANT_BLOCK)
    q = _from_bytes(_sized(data, shape, "int8", "data"), "int8", shape)
    scale_values = _from_bytes(_sized(scales, scale_shape, "float16", "scales"), "float16", scale_shape)
    return dequantize_int8(q, scale_values, axis).to(model_dtype)


def _shape(text) -> list[int]:
    try:
        shape = json.loads(text)
    except (TypeError, ValueError) as error:
        raise ChunkUnreadable("its shape is not readable") from error
    if not (isinstance(shape, list) and len(shape) == 4 and shape[0] == 1
            and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape)):
        raise ChunkUnreadable(f"shape {str(shape)[:40]} is not (1, H, T, D)")
    return shape


def _sized(data: bytes, shape: list[int], dtype: str, what: str) -> bytes:
    expected = _TORCH_DTYPES[dtype].itemsize * shape[0] * shape[1] * shape[2] * shape[3]
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) != expected:
        size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else type(data).__name__
        raise ChunkUnreadable(f"{what} holds {size} bytes for a {dtype} tensor of shape {shape} ({expected})")
    return data


def _token_spans(length: int, bytes_per_token: int) -> list[tuple[int, int]]:
    step = max(1, CHUNK_BYTES // max(1, bytes_per_token))
    return [(start, min(length, start + step)) for start in range(0, length, step)]


def encode_layers(storage_format: str, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> list[dict]:
    """Per layer (keys, values), each (1, H_kv, L, D) -> chunk rows (layer, kind, part, start, ...)."""
    assert storage_format in FORMATS, storage_format
    rows = []
    for layer, (keys, values) in enumerate(layers):
        for kind, tensor in (("k", keys), ("v", values)):
            assert tensor.dim() == 4 and tensor.shape[0] == 1, tuple(tensor.shape)  # (1, H_kv, L, D)
            per_token = tensor.shape[1] * tensor.shape[3] * tensor.element_size()
            for part, (start, end) in enumerate(_token_spans(tensor.shape[2], per_token)):
                chunk = encode_chunk(tensor[:, :, start:end], kind, storage_format)
                rows.append({"layer": layer, "kind": kind, "part": part, "start": start, **chunk})
    return rows
