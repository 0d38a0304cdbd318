"""Issue 23, item 1: a stored state that cannot be decoded, whatever its checksum says, is set aside (quarantined),
said once, and the document is read again; it never ends in a traceback."""
from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest
import torch
from test_state_cache import make_engine, make_key, random_layers

from engine.api import Engine, EngineSettings
from engine.store import state_cache as sc

import pdfs
from test_storage_readonly import ask_twice, home  # noqa: F401  (home: a data folder after one answer)


def stored_ids(path: Path, where: str = "1 = 1") -> list[int]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute(f"SELECT id FROM states WHERE {where}")]


def craft(path: Path, how: str, where: str = "1 = 1") -> None:
    """Change one stored chunk (or its state) as an attacker or a broken disk could, keeping the chunk's byte
    count and CRC-32 consistent with what is written, so only decoding can tell."""
    db = sqlite3.connect(path)
    with db:
        rowid, state_id = db.execute(f"SELECT rowid, state_id FROM chunks WHERE {where} "
                                     "ORDER BY rowid LIMIT 1").fetchone()

        def rewrite(data: bytes, scales: bytes = b"") -> None:
            db.execute("UPDATE chunks SET data = ?, scales = ?, nbytes = ?, checksum = ? WHERE rowid = ?",
                       [data, scales, len(data) + len(scales), zlib.crc32(scales, zlib.crc32(data)), rowid])
        if how == "dtype pickle":
            db.execute("UPDATE chunks SET dtype = 'pickle' WHERE rowid = ?", [rowid])
        elif how == "65 bytes":
            rewrite(bytes(range(65)))
        elif how == "shape not json":
            db.execute("UPDATE chunks SET shape = '[1, 2,' WHERE rowid = ?", [rowid])
        elif how == "shape of 3 sizes":
            db.execute("UPDATE chunks SET shape = '[2, 50, 16]' WHERE rowid = ?", [rowid])
        elif how == "shape larger than the data":
            db.execute("UPDATE chunks SET shape = '[1, 2, 1000000, 16]' WHERE rowid = ?", [rowid])
        elif how == "data as text":
            db.execute("UPDATE chunks SET data = 'not bytes', nbytes = 9 WHERE rowid = ?", [rowid])
        elif how == "logits of 3 bytes":
            db.execute("UPDATE states SET logits = x'010203' WHERE id = ?", [state_id])
        elif how == "a billion layers":
            db.execute("UPDATE states SET layers = 1000000000 WHERE id = ?", [state_id])
        elif how == "kind x":
            db.execute("UPDATE chunks SET kind = 'x' WHERE rowid = ?", [rowid])
        else:
            raise AssertionError(how)
    db.close()


CRAFTS = ["dtype pickle", "65 bytes", "shape not json", "shape of 3 sizes", "shape larger than the data",
          "data as text", "logits of 3 bytes", "a billion layers", "kind x"]


@pytest.mark.parametrize("storage", ["model", "int8"])
@pytest.mark.parametrize("how", CRAFTS)
def test_a_state_that_does_not_decode_is_set_aside_once_and_stored_again(tmp_path, how, storage):
    path = tmp_path / "states.sqlite"
    cache = sc.StateCache(path)
    key = make_key(storage=storage)
    cache.store(key, random_layers(), torch.zeros(2))
    cache.store(make_key(sha="b" * 64, storage=storage), random_layers(seed=1), torch.zeros(2))
    cache.close()
    craft(path, how, where=f"state_id = (SELECT id FROM states WHERE sha256 = '{'a' * 64}')")

    cache = sc.StateCache(path)
    assert cache.load(key, torch.float32) is None  # no exception: the state is set aside
    notices = cache.take_notices()
    assert len(notices) == 1 and "was damaged" in notices[0] and "set aside" in notices[0], notices
    assert [row["sha256"] for row in cache.quarantined()] == ["a" * 64]
    assert cache.load(key, torch.float32) is None and cache.take_notices() == []  # said once
    other = cache.load(make_key(sha="b" * 64, storage=storage), torch.float32)  # the other state is untouched
    assert other is not None and cache.take_notices() == []
    cache.store(key, random_layers(), torch.zeros(2))  # read again, stored again
    again = cache.load(key, torch.float32)
    assert again is not None and torch.allclose(again.layers[1][1], random_layers()[1][1], atol=0.05)


@pytest.mark.parametrize("how", ["dtype pickle", "65 bytes"])
def test_asking_again_after_a_crafted_state_reads_the_document_again(tiny_model_dir, tmp_path, fact_pdf, how):
    first = make_engine(tiny_model_dir, tmp_path)
    doc = first.open_document(fact_pdf)
    expected = first.ask(doc, "What is the launch code?").answer
    first.state_cache.close()
    for state_id in stored_ids(tmp_path / "states.sqlite"):  # the head's and the segment's: every stored state
        craft(tmp_path / "states.sqlite", how, where=f"state_id = {state_id}")

    again = make_engine(tiny_model_dir, tmp_path)
    answer = again.ask(again.open_document(fact_pdf), "What is the launch code?")
    assert answer.answer == expected and answer.timings["state_from"] == "prefill"
    assert "A cached document state was damaged" in answer.notice and "read again" in answer.notice
    later = make_engine(tiny_model_dir, tmp_path)  # the state read again was stored again
    assert later.ask(later.open_document(fact_pdf), "What is the launch code?").timings["state_from"] == "disk"


@pytest.fixture(scope="module")
def small_window_model(tmp_path_factory, bundled_dir):
    from conftest import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("small-window"), bundled_dir, window=1024)


def test_a_crafted_segment_state_of_a_long_document_is_set_aside_and_read_again(small_window_model, tmp_path):
    from engine.library.documents import Library

    paragraphs = [pdfs.FILLER * 3 + f" Section {n} is about item number {n * 7}." for n in range(6)]
    long_pdf = pdfs.paragraphs_pdf(tmp_path / "long.pdf", paragraphs)

    def engine() -> Engine:
        settings = EngineSettings(model=str(small_window_model), device="cpu").changed(
            answer={"max_new_tokens": 4, "focal_tokens": 64}, reading={"segment": 96, "overlap": 16})
        return Engine(settings, library=Library(tmp_path / "library.sqlite"))

    first = engine()
    doc = first.open_document(long_pdf)
    assert doc.method == "select"
    first.ask(doc, "Which item is section 4 about?")
    first.state_cache.close()
    segment_states = stored_ids(tmp_path / "states.sqlite", "variant LIKE '%part'")
    assert 1 <= len(segment_states) < doc.segments  # the question read only what it needed, and kept its part
    for state_id in segment_states:  # every segment: whichever the question needs is crafted
        craft(tmp_path / "states.sqlite", "dtype pickle", where=f"state_id = {state_id}")

    again = engine()
    answer = again.ask(again.open_document(long_pdf), "Which item is section 4 about?")
    assert answer.answer and "A cached document state was damaged" in answer.notice
    assert len(again.state_cache.quarantined()) >= 1


@pytest.mark.parametrize("how", ["dtype pickle", "65 bytes"])
def test_the_command_line_answers_after_a_crafted_state_and_says_so_once(home, tiny_model_dir, fact_pdf, how):
    craft(home / "states.sqlite", how)
    result = ask_twice([], home, tiny_model_dir, fact_pdf)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2  # both questions answered
    notes = [line for line in result.stderr.splitlines() if "A cached document state was damaged" in line]
    assert len(notes) == 1 and notes[0].startswith("Note: ") and "cannot be decoded" in notes[0], result.stderr
