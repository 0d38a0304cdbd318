"""DocFocus on a CUDA GPU, in one command: ``python -m bench --only gpu`` (add ``--model PATH`` for quality).

Random-weight models of a Llama-3-8B shape (32 layers, 32 heads, 8 KV heads, head size 128, vocabulary 128,256)
and of a Qwen2.5-7B shape (28 layers, 28 heads, 4 KV heads, head size 128, vocabulary 152,064) are built from
transformers configs on the GPU in bf16. Random weights are enough for speed: the work a step does depends on
the shapes, not on what the weights say (DGA's selection cost included: top-k over any scores costs the same).
For each model, in one run, every comparison interleaved with its spread (bench/timing.py):

- decode ms per token at 8K, 32K and 128K tokens of context: plain SDPA, the product's dense mode and DGA with
  the product's settings (``EngineSettings().attention.dga``), with the share of a step spent in attention
  (bench/speed.py), and the bytes bound: the speed-up DGA would reach if a step cost the bytes it reads;
- the attention step alone at the same lengths against one SDPA call over the keys DGA keeps (bench/speed.py);
- reading tokens/s at 8K and 32K: dense, dense with stacked queries (a candidate fix, bench/prefill.py) and
  prefill-time DGA; at 128K the long-document path (engine/reading/lazy.py, every segment, then the question scored over
  every segment, engine/attention/scoring.py ``over_segments``), and in the full run a dense 128K read as reference;
- peak GPU memory of each.

With ``--model PATH`` the needle section (bench/needle.py) also runs on that model on the GPU (it needs the R
manuals of Debian's r-doc-pdf). Without CUDA the section says so and returns; DOCFOCUS_BENCH_GPU_SHAPE=tiny runs
the same code with tiny shapes on whatever device there is (the test suite does, so the code cannot rot).
"""
from __future__ import annotations

import gc
import os
from pathlib import Path

import torch

from bench import prefill, speed, timing

SHAPES = {  # transformers config fields of the published models (max_position_embeddings raised to 128K)
    "Llama-3-8B": ("llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                 num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=128256,
                                 rope_theta=500000.0, max_position_embeddings=131072, tie_word_embeddings=False)),
    "Qwen2.5-7B": ("qwen2", dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                 num_attention_heads=28, num_key_value_heads=4, head_dim=128, vocab_size=152064,
                                 rope_theta=1000000.0, max_position_embeddings=131072, tie_word_embeddings=False)),
}
TINY = {
    "tiny-llama": ("llama", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, head_dim=16, vocab_size=4096, max_position_embeddings=131072)),
    "tiny-qwen2": ("qwen2", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=1, head_dim=16, vocab_size=4096, max_position_embeddings=131072)),
}
LENGTHS = {"decode": (8192, 32768, 131072), "read": (8192, 32768), "long": 131072}
TINY_LENGTHS = {"decode": (1024, 2048), "read": (1536, 2048), "long": 4096}
HEAD, QUESTION = 32, 32  # tokens of a pretend chat head before the document, and of the question


def plan() -> tuple[dict, dict, torch.device | None]:
    """(shapes, lengths, device): the real shapes on CUDA, or the tiny ones on any device when asked."""
    tiny = os.environ.get("DOCFOCUS_BENCH_GPU_SHAPE", "") == "tiny"
    device = torch.device("cuda") if torch.cuda.is_available() else (torch.device("cpu") if tiny else None)
    return (TINY, TINY_LENGTHS, device) if tiny else (SHAPES, LENGTHS, device)


def build_model(kind: str, fields: dict, device, dtype):
    """A random-weight causal LM of this shape on ``device``, with DocFocus attention switched on."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from engine.attention import contract as attention

    config = (LlamaConfig if kind == "llama" else Qwen2Config)(**fields)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.eval()
    attention.enable(model)
    return model


def random_ids(count: int, vocab: int, seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1000, vocab - 1000, (count,), generator=generator).tolist()


def bytes_bound(config, keys: int, fraction: float, dtype_bytes: int = 2) -> dict:
    """The decode speed-up DGA could reach at batch 1 if a step cost the bytes it reads (every weight but the
    input embedding, and the whole K/V cache or ``fraction`` of it): the oracle row of the decode table."""
    from engine.attention.ops import head_dim

    hidden, dim = config.hidden_size, head_dim(config)
    attention = hidden * dim * 2 * (config.num_attention_heads + config.num_key_value_heads)
    layer = attention + 3 * hidden * config.intermediate_size
    weights = (config.num_hidden_layers * layer + config.vocab_size * hidden) * dtype_bytes
    cache = 2 * config.num_hidden_layers * config.num_key_value_heads * dim * keys * dtype_bytes
    return {"weights_gb": round(weights / 1e9, 1), "kv_gb": round(cache / 1e9, 1),
            "bound": round((weights + cache) / (weights + fraction * cache), 2)}


def guarded(name: str, work):
    """``work()``, or a row that says it ran out of memory (the next measurement still runs)."""
    from engine.errors import OutOfMemoryError, is_out_of_memory

    try:
        return work()
    except (OutOfMemoryError, RuntimeError, MemoryError) as error:  # torch's and the engine's out-of-memory
        if not (isinstance(error, OutOfMemoryError) or is_out_of_memory(error)):
            raise
        print(f"  {name}: out of memory ({str(error).splitlines()[0][:120]})", flush=True)
        return {"skipped": f"out of memory: {name}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def decode_at(model, length: int, rounds: int, device) -> dict:
    """Decode rows at ``length`` tokens of context: a short read tiled to the length (content does not change
    the cost), then bench/speed.py's interleaved methods; peak memory of the whole measurement."""
    from engine.model import generation
    from engine.settings import EngineSettings

    settings = EngineSettings()
    base = generation.new_cache(model.config)
    generation.prefill(model, random_ids(min(2048, length), model.config.vocab_size, 1), base)
    cache = prefill.tiled_cache(model, base, length)
    del base
    q_ids = random_ids(QUESTION, model.config.vocab_size, 2)
    with timing.PeakMemory(device) as memory:
        row = speed.timed_decode(model, cache, HEAD, length, q_ids, settings, device, rounds)
    row.update(context=length, peak_gb=round(memory.peak / 2**30, 2),
               **bytes_bound(model.config, length, row["attended_fraction"]))
    del cache
    return row


def attention_at(config, length: int, rounds: int, device, dtype) -> dict:
    from engine.attention.ops import head_dim
    from engine.settings import EngineSettings

    with timing.PeakMemory(device) as memory:
        row = speed.attention_step(length, config.num_attention_heads, config.num_key_value_heads,
                                   head_dim(config), EngineSettings().attention.dga, device, dtype, rounds)
    row["peak_gb"] = round(memory.peak / 2**30, 2)
    return row


def read_at(model, length: int, rounds: int, device) -> dict:
    """Whole reads of ``length`` random tokens: dense, dense with stacked queries, prefill-time DGA."""
    from engine.attention.dga_prefill import PrefillSettings

    settings, memory, runs = PrefillSettings(), {}, {}
    ids = random_ids(length, model.config.vocab_size, 3)
    modes = ("dense", "dense, stacked", "dga")
    for sample in prefill.reading_methods(model, ids[:1024], settings, device, {}, {}, modes).values():
        sample()  # warm-up
    spreads = timing.interleaved(prefill.reading_methods(model, ids, settings, device, memory, runs, modes),
                                 rounds, warmup=0, device=device)
    return prefill.reading_row(spreads, memory, runs, length, load_average=timing.load_average())


def long_path(model, length: int, rounds: int, device, full: bool) -> dict:
    """The long-document path at ``length`` tokens: segment reading, then one question scored over every segment
    (interleaved rounds of the scoring); in the full run a dense read of the same tokens as reference."""
    import time

    from engine.attention import scoring
    from engine.reading import segments
    from engine.reading.lazy import LazyReading

    head = random_ids(HEAD, model.config.vocab_size, 4)
    doc = random_ids(length, model.config.vocab_size, 5)
    q_ids = random_ids(QUESTION, model.config.vocab_size, 6)
    with timing.PeakMemory(device) as reading_memory:
        started = time.perf_counter()
        reading = LazyReading.in_memory(model, head, doc, segments.Segmenting()).whole()
        timing.synchronize(device)
        read_s = time.perf_counter() - started
    state_bytes = sum(t.numel() * t.element_size() for t in reading.keys + reading.values)
    with timing.PeakMemory(device) as scoring_memory:
        spread = timing.interleaved({"score": lambda: scoring.over_segments(model, reading, q_ids)}, rounds,
                                    warmup=1, device=device)["score"]
    row = {"tokens": length, "segments": len(reading.segments), "read_s": round(read_s, 2),
           "read_tokens_per_s": round(length / read_s, 1), "read_peak_gb": round(reading_memory.peak / 2**30, 2),
           "state_gb": round(state_bytes / 2**30, 2), "score_s": spread.summary(digits=3),
           "score_peak_gb": round(scoring_memory.peak / 2**30, 2)}
    del reading
    if full:
        row["dense_read"] = guarded("dense read", lambda: dense_read(model, head + doc, device))
    return row


def dense_read(model, ids: list[int], device) -> dict:
    import time

    from engine.model import generation

    cache = generation.new_cache(model.config)
    with timing.PeakMemory(device) as memory:
        started = time.perf_counter()
        generation.prefill(model, ids, cache)
        timing.synchronize(device)
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "tokens_per_s": round(len(ids) / seconds, 1),
            "peak_gb": round(memory.peak / 2**30, 2)}


def measure_shape(name: str, kind: str, fields: dict, lengths: dict, device, quick: bool) -> dict:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(kind, fields, device, dtype)
    rounds = 5 if quick else 9
    result = {"shape": name, "config": fields, "dtype": str(dtype).replace("torch.", ""), "decode": [],
              "attention_step": [], "read": [], "load_average": [timing.load_average()]}
    for length in lengths["decode"]:
        result["decode"].append(guarded(f"decode {length}", lambda: decode_at(model, length, rounds, device)))
        print(f"  {name} decode {length}: {short(result['decode'][-1])}", flush=True)
    for length in lengths["decode"]:
        result["attention_step"].append(guarded(f"attention {length}", lambda: attention_at(
            model.config, length, 2 * rounds + 1, device, dtype)))
    for length in lengths["read"]:
        result["read"].append(guarded(f"read {length}", lambda: read_at(model, length, 2 if quick else 3, device)))
        print(f"  {name} read {length}: done", flush=True)
    result["long"] = guarded("long", lambda: long_path(model, lengths["long"], 3, device, not quick))
    result["load_average"].append(timing.load_average())
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def short(row: dict) -> str:
    if "skipped" in row:
        return row["skipped"]
    return f"dense {row['dense_ms']['median']} ms, DGA {row['dga_ms']['median']} ms per token"


def device_name(device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__})"


def run(quick: bool, out_dir: Path) -> dict:
    shapes, lengths, device = plan()
    if device is None:
        note = ("No CUDA device: the GPU section needs an NVIDIA GPU and a CUDA build of torch (README, \"Installing "
                "on a GPU\"). Nothing was measured. DOCFOCUS_BENCH_GPU_SHAPE=tiny runs its code with tiny shapes on "
                "the CPU.")
        print("  " + note, flush=True)
        return {"skipped": "no CUDA device", "markdown": note + "\n"}
    print(f"  {device_name(device)}; random weights are enough for speed (cost depends on the shapes only)",
          flush=True)
    models = [measure_shape(name, kind, fields, lengths, device, quick) for name, (kind, fields) in shapes.items()]
    result = {"device": device_name(device), "tiny": shapes is TINY, "models": models}
    model_path = os.environ.get("DOCFOCUS_BENCH_MODEL")
    if model_path:
        result["needle"] = needle_on(model_path, quick, out_dir)
    result["markdown"] = markdown(result)
    return result


def needle_on(model_path: str, quick: bool, out_dir: Path) -> dict:
    """The needle section (bench/needle.py) with a real model, on the GPU."""
    from bench import needle

    os.environ.setdefault("DOCFOCUS_BENCH_DEVICE", "cuda" if torch.cuda.is_available() else "cpu")
    try:
        return needle.run(True, out_dir, lengths=[4096, 8192] if quick else [4096, 8192, 16384])
    except SystemExit as missing:  # the R manuals are not installed
        return {"skipped": str(missing), "markdown": f"Needles not run: {missing}\n"}


# ---- the report


def markdown(result: dict) -> str:
    text = (f"GPU section on {result['device']}. The models have random weights, which are enough for speed: what a "
            "step costs depends on the shapes, not on what the weights say. Quality needs real weights "
            "(`--model PATH`).\n")
    for model in result["models"]:
        fields = model["config"]
        text += (f"\n### {model['shape']}, {model['dtype']} ({fields['num_hidden_layers']} layers, "
                 f"{fields['num_attention_heads']}/{fields['num_key_value_heads']} heads, head size "
                 f"{fields['head_dim']}; load average {model['load_average'][0]} to {model['load_average'][-1]})\n\n")
        text += decode_table(model["decode"]) + "\n"
        text += speed.step_markdown([r for r in model["attention_step"] if "skipped" not in r]) + "\n"
        text += read_table(model["read"]) + "\n" + long_table(model["long"])
    if "needle" in result:
        text += "\n### Needles on the given model\n\n" + result["needle"].get("markdown", "")
    return text


def decode_table(rows: list[dict]) -> str:
    text = ("Decode, ms per token (median (min-max) of the interleaved rounds; speed-ups per round; bytes bound = "
            "the speed-up if a step cost the bytes it reads, the oracle at batch 1):\n\n"
            "| context | plain SDPA | dense | DGA | DGA vs dense | bytes bound | attention share, dense / DGA | "
            "keys attended | peak GB |\n|---|---|---|---|---|---|---|---|---|\n")
    for r in rows:
        if "skipped" in r:
            text += f"| - | {r['skipped']} |||||||\n"
            continue
        times, shares = speed.decode_cells(r, 2)
        text += f"| {r['context']:,} | {times} | {r['bound']}x | {shares} | {r['attended_fraction']:.3f} | {r['peak_gb']} |\n"
    return text


def read_table(rows: list[dict]) -> str:
    text = ("Reading (whole reads of random tokens, chunks of 512; median (min-max); \"dense, stacked\" is the "
            "candidate fix of the dense read):\n\n| tokens | read | tokens/s | speed-up vs dense | peak +MiB | "
            "analytic | keys attended | load |\n|---|---|---|---|---|---|---|---|\n")
    for row in rows:
        if "skipped" in row:
            text += f"| - | {row['skipped']} |||||||\n"
            continue
        for mode in ("dense", "dense, stacked", "dga"):
            text += prefill.reading_line(f"{row['tokens']:,}", row, mode, None)
    return text


def long_table(row: dict) -> str:
    if "skipped" in row:
        return f"Long-document path: {row['skipped']}\n"
    dense = row.get("dense_read") or {}
    reference = (f"; a dense read of the same tokens: {dense['seconds']} s, {dense['tokens_per_s']} tokens/s, "
                 f"peak {dense['peak_gb']} GB" if "seconds" in dense else "")
    return ("Long-document path (segments of ~2K tokens read apart, then a question scored over every segment):"
            "\n\n| tokens | segments | read s | read tokens/s | state GB | read peak GB | scoring s per question | "
            f"scoring peak GB |\n|---|---|---|---|---|---|---|---|\n| {row['tokens']:,} | {row['segments']} | "
            f"{row['read_s']} | {row['read_tokens_per_s']} | {row['state_gb']} | {row['read_peak_gb']} | "
            f"{speed.cell(row['score_s'], 3)} | {row['score_peak_gb']} |\n{reference}\n")
