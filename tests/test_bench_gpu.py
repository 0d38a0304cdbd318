"""The GPU benchmark section (bench/gpu.py) runs its code with tiny shapes on the CPU, so it cannot rot before a
GPU runs it; without CUDA and without the tiny shapes it says so and exits cleanly."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bench import gpu, prefill

from conftest import ROOT

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the section measures for real")


def test_tiny_shapes_run_every_measurement(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCFOCUS_BENCH_GPU_SHAPE", "tiny")
    monkeypatch.delenv("DOCFOCUS_BENCH_MODEL", raising=False)
    result = gpu.run(True, tmp_path)
    json.dumps(result)  # what python -m bench writes
    assert [model["shape"] for model in result["models"]] == list(gpu.TINY)
    for model in result["models"]:
        decode = model["decode"]
        assert [row["context"] for row in decode] == list(gpu.TINY_LENGTHS["decode"])
        assert decode[-1]["attended_fraction"] < 0.3  # DGA really compressed the longest context
        for row in decode:
            assert row["dga_ms"]["n"] == 5 and 0 < row["dga_attention_share"]["median"] < 1
            assert row["peak_gb"] > 0 and row["bound"] >= 1
        for row in model["attention_step"]:
            assert row["kept_keys"] < row["keys"] and row["floor_ms"]["median"] > 0
        for row in model["read"]:
            assert set(row) >= {"dense", "dense, stacked", "dga"}
            assert row["dga"]["attended_fraction"] < 1 and row["dga"]["speedup"]["n"] == 2
        assert model["long"]["segments"] >= 2 and model["long"]["score_s"]["n"] == 3
    text = result["markdown"]
    assert "random weights, which are enough for speed" in text
    assert text.count("### tiny-") == 2 and "Long-document path" in text


@no_cuda
def test_without_cuda_the_section_says_so(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCFOCUS_BENCH_GPU_SHAPE", raising=False)
    result = gpu.run(True, tmp_path)
    assert result["skipped"] == "no CUDA device" and "No CUDA device" in result["markdown"]


@no_cuda
def test_the_command_exits_cleanly_without_cuda(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "gpu", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No CUDA device" in done.stdout
    assert json.loads((tmp_path / "quick" / "gpu.json").read_text())["skipped"] == "no CUDA device"


def test_bytes_bound_of_the_llama_shape():
    from transformers import LlamaConfig

    config = LlamaConfig(**gpu.SHAPES["Llama-3-8B"][1])
    at_32k = gpu.bytes_bound(config, 32768, 0.163)
    assert at_32k["weights_gb"] == 15.0  # 8.03B parameters less the input embedding, 2 bytes each
    assert at_32k["kv_gb"] == 4.3  # 32 layers x 8 KV heads x 128 x keys and values x 2 bytes x 32,768
    assert 1.2 < at_32k["bound"] < 1.25  # far below the paper's 2.42x: the weights dominate a step
    assert gpu.bytes_bound(config, 131072, 0.163)["bound"] > 1.6


def test_stacked_dense_read_equals_the_dense_read(tiny_engine):
    """The candidate fix of the dense read (bench/prefill.py StackedRead) is exact."""
    import copy

    from engine.attention import contract as attention
    from engine.attention.dga_prefill import PrefillSettings
    from engine.model import generation

    model = copy.deepcopy(tiny_engine.loaded.model)
    attention.enable(model)
    ids = list(range(100, 1400))
    caches = {}
    for mode in ("dense", "dense, stacked"):
        caches[mode] = generation.new_cache(model.config)
        caches[mode + " logits"] = prefill.read(model, ids, caches[mode], mode, PrefillSettings())
    torch.testing.assert_close(caches["dense, stacked logits"], caches["dense logits"], rtol=1e-5, atol=1e-5)
    for dense, stacked in zip(caches["dense"].layers, caches["dense, stacked"].layers):
        torch.testing.assert_close(stacked.keys, dense.keys, rtol=1e-5, atol=1e-5)


def test_running_out_of_memory_becomes_a_row_and_other_errors_propagate():
    from engine.errors import OutOfMemoryError

    def fails(error):
        raise error

    assert gpu.guarded("read", lambda: fails(OutOfMemoryError("reading"))) == {"skipped": "out of memory: read"}
    assert gpu.guarded("decode", lambda: fails(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")))[
        "skipped"] == "out of memory: decode"
    with pytest.raises(RuntimeError, match="shape mismatch"):
        gpu.guarded("decode", lambda: fails(RuntimeError("shape mismatch")))
