"""Issue 23, item 7: mutated PDFs neither crash nor hang DocFocus. A sample here (seconds); the full 1,000
mutants: ``python -m bench.fuzz`` or ``python -m bench --only fuzz`` (bench/fuzz.py)."""
from __future__ import annotations

import sys

from bench import fuzz


def test_a_sample_of_mutated_pdfs_neither_crashes_nor_hangs(tmp_path):
    result = fuzz.fuzz(30, seed=3, keep=tmp_path / "found")  # seed 3 cut a PDF short where MuPDF raised on open
    assert result["crash"] == 0 and result["hang"] == 0, result["found"]
    assert result["read"] > 0 and result["refused"] > 0  # the sample reaches both outcomes
    assert not (tmp_path / "found").exists()


def test_the_runner_tells_a_crash_and_a_hang_from_a_clean_read(tmp_path):
    script = ("import sys, time, os\n"
              "for line in sys.stdin:\n"
              "    if 'dies' in line: os.abort()\n"
              "    if 'hangs' in line: time.sleep(60)\n"
              "    print('{\"outcome\": \"read\", \"seconds\": 0.1}', flush=True)\n")
    worker = fuzz.Worker([sys.executable, "-c", script])
    try:
        assert worker.read(tmp_path / "fine.pdf", None, 10)["outcome"] == "read"
        assert worker.read(tmp_path / "dies.pdf", None, 10)["outcome"] == "crash"
        assert worker.read(tmp_path / "hangs.pdf", None, 1)["outcome"] == "hang"
        assert worker.read(tmp_path / "fine.pdf", None, 10)["outcome"] == "read"  # a new worker took over
    finally:
        worker.stop()
