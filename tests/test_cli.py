"""The command line: end to end with the real bundled model, and bad input with clear messages."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pdfs
from conftest import ROOT


def docfocus(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def test_version_and_help():
    from engine import __version__

    assert docfocus("--version").stdout.strip() == f"DocFocus {__version__}"
    result = docfocus("ask", "--help")
    assert result.returncode == 0 and "--max-new-tokens" in result.stdout and "--device" in result.stdout


@pytest.mark.model
def test_ask_json_with_bundled_model_answers_the_fact(tmp_path, bundled_dir):
    path = pdfs.fact_pdf(tmp_path / "facts.pdf")
    result = docfocus("ask", str(path), "What is the observatory's secret launch code?",
                      "Who met in the spring?", "--json", "--device", "cpu", "--max-new-tokens", "30")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert "4417" in first["answer"]
    assert first["question"] == "What is the observatory's secret launch code?"
    assert first["document"]["pages"] == 3 and first["document"]["tokens"] > 100
    assert len(first["document"]["sha256"]) == 64
    assert first["model"] == {**first["model"], "id": "SmolLM2-135M-Instruct", "device": "cpu", "dtype": "float32"}
    assert first["attention"]["context"] == "passages" and first["supported"] is True
    assert first["citations"][0]["page"] == 2 and "4417" in first["citations"][0]["text"]
    assert set(first["timings"]) >= {"load_s", "rank_s", "segments_read_s", "first_token_s", "decode_tokens_per_s"}
    assert first["timings"]["first_token_s"] >= first["timings"]["segments_read_s"] > 0
    assert first["attention"]["ranking"] == ["words", "meaning", "model"]  # words, meaning, the model's check
    assert first["evidence"][0]["page"] == 2 and first["finish"] == "complete"
    assert first["highlights"] and {h["page"] for h in first["highlights"]} == {2}
    assert first["cache_hit"] is False and lines[1]["cache_hit"] is True  # read once, then reused in memory
    assert lines[1]["timings"]["segments_read"] == 0  # the second question needs what the first one read


@pytest.mark.model
def test_ask_prints_the_answer_and_its_sources(tmp_path, bundled_dir):
    result = docfocus("ask", str(ROOT / "resources" / "sample.pdf"), "How tall is the tower?",
                      "--device", "cpu", "--max-new-tokens", "20")
    assert result.returncode == 0, result.stderr
    answer, sources = result.stdout.splitlines()[:2]
    assert "38" in answer and sources == "Sources: p. 2"


@pytest.mark.parametrize("make, extra, message", [
    (lambda p: p, [], "not found"),
    (lambda p: (p.write_text("plain text"), p)[1], [], "not a PDF"),
    (pdfs.corrupt_pdf, [], "damaged|no pages"),
    (pdfs.encrypted_pdf, [], "encrypted"),
    (pdfs.encrypted_pdf, ["--password", "wrong"], "Wrong password"),
    (pdfs.scanned_pdf, [], "no text layer"),
])
def test_bad_pdfs_exit_nonzero_with_message(tmp_path, bundled_dir, make, extra, message):
    import re

    path = make(tmp_path / "input.pdf")
    result = docfocus("ask", str(path), "What is this?", *extra, "--device", "cpu")
    assert result.returncode != 0
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


def test_empty_question_exits_nonzero(tmp_path):
    result = docfocus("ask", str(ROOT / "resources" / "sample.pdf"), "  ")
    assert result.returncode != 0 and "empty" in result.stderr and "Traceback" not in result.stderr


def test_bad_model_path_exits_nonzero(tmp_path):
    result = docfocus("ask", str(ROOT / "resources" / "sample.pdf"), "q", "--model", str(tmp_path / "nope"))
    assert result.returncode != 0 and "not found" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("option, value, message", [
    ("--gamma", "2", r"gamma\) \(--gamma\) must be between 0 and 1, got 2"),
    ("--gamma", "-1", "must be between 0 and 1"),
    ("--group", "0", r"\(--group\) must be between 1 and 4096"),
    ("--max-new-tokens", "0", r"\(--max-new-tokens\) must be between 1 and 4096 tokens, got 0"),
    ("--max-new-tokens", "-5", "must be between 1 and 4096"),
    ("--focal", "-5", r"\(--focal\) must be between 32 and 65536"),
    ("--cache-cap-gb", "-1", r"\(--cache-cap-gb\) must be between 0 and"),
])
def test_option_values_are_checked_before_any_work(option, value, message):
    import re

    result = docfocus("ask", str(ROOT / "resources" / "sample.pdf"), "How tall is the tower?", option, value)
    assert result.returncode == 2 and re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and not result.stdout
