"""``docfocus library add|list|remove`` and ``docfocus ask --library`` end to end, in subprocesses, with a tiny
random model (1,024-token window: the longer PDFs are read in segments) and a private data folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_library import QUESTION, library_folder

import pdfs
from conftest import ROOT


def docfocus(home: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def test_library_commands_end_to_end(tmp_path, bundled_dir):
    from conftest import make_tiny_model

    model = make_tiny_model(tmp_path / "model", bundled_dir, window=1024)
    home = tmp_path / "home"
    folder = library_folder(tmp_path)
    options = ["--model", str(model), "--device", "cpu", "--max-new-tokens", "4"]
    empty = docfocus(home, "library", "list")
    assert empty.returncode == 0 and "library is empty" in empty.stdout
    added = docfocus(home, "library", "add", str(folder), "--json", *options)
    assert added.returncode == 0, added.stderr
    rows = [json.loads(line) for line in added.stdout.splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["manual.pdf", "notes.pdf", "report.pdf"]
    assert all(r["state"] == "ready" and r["tokens"] > 100 and len(r["sha256"]) == 64 for r in rows)
    listed = json.loads(docfocus(home, "library", "list", "--json").stdout)["documents"]
    assert [d["id"] for d in listed] == [r["id"] for r in rows]
    text = docfocus(home, "library", "list").stdout
    assert "ready" in text and "Observatory notes" in text and "manual.pdf" in text

    asked = docfocus(home, "ask", "--library", QUESTION, "When does the harbour ferry leave?", "--json", *options)
    assert asked.returncode == 0, asked.stderr
    first, second = [json.loads(line) for line in asked.stdout.splitlines()]
    notes = next(r for r in rows if r["path"].endswith("notes.pdf"))
    manual = next(r for r in rows if r["path"].endswith("manual.pdf"))
    assert first["document"]["library"] is True and first["document"]["documents"] == 3
    assert first["evidence"][0]["document"] == {"sha256": notes["sha256"], "path": notes["path"],
                                                "title": "Observatory notes"}
    assert first["evidence"][0]["page"] == 2 and "4417" in first["evidence"][0]["text"]
    assert all(set(e["document"]) == {"sha256", "path", "title"} for e in first["evidence"] + second["evidence"])
    assert all(c["document"]["sha256"] and c["page"] >= 1 for c in first["citations"] + second["citations"])
    assert second["evidence"][0]["document"]["sha256"] == manual["sha256"] and second["evidence"][0]["page"] == 1
    plain = docfocus(home, "ask", "--library", QUESTION, *options)
    assert plain.returncode == 0 and "Observatory notes, p. 2" in plain.stderr

    # A changed file is read again by the next command; remove by path and by id
    pdfs.paragraphs_pdf(folder / "notes.pdf", ["The secret launch code of the observatory is now 9921."])
    again = docfocus(home, "ask", "--library", QUESTION, "--json", *options)
    assert again.returncode == 0, again.stderr
    assert "9921" in json.loads(again.stdout)["evidence"][0]["text"]
    assert docfocus(home, "library", "remove", str(folder / "notes.pdf")).returncode == 0
    assert docfocus(home, "library", "remove", str(manual["id"])).returncode == 0
    left = json.loads(docfocus(home, "library", "list", "--json").stdout)["documents"]
    assert [Path(d["path"]).name for d in left] == ["report.pdf"]
    missing = docfocus(home, "library", "remove", "999")
    assert missing.returncode == 2 and "No document 999" in missing.stderr and "Traceback" not in missing.stderr


def test_library_add_of_a_missing_path_says_so(tmp_path):
    result = docfocus(tmp_path / "home", "library", "add", str(tmp_path / "nothing-here"), "--no-read")
    assert result.returncode == 2 and "was not found" in result.stderr and "Traceback" not in result.stderr


def test_ask_without_a_question_says_so(tmp_path):
    result = docfocus(tmp_path / "home", "ask", str(tmp_path / "a.pdf"))
    assert result.returncode == 2 and "No question" in result.stderr
