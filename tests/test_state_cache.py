"""The document state cache: exact restore, formats, keys, the size cap, and every fault the issue lists."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.library.documents import Library
from engine.store import codec as state_codec
from engine.store import state_cache as sc
from engine.store.history import History

import pdfs
from conftest import ROOT


def make_engine(model_dir, folder, **store) -> Engine:
    """An engine that answers from the whole document (its whole reading is stored and restored: what these
    tests check; stored segments are tested in test_segments.py, test_library.py and test_faults_states.py)."""
    settings = EngineSettings(model=str(model_dir), device="cpu").changed(
        answer={"max_new_tokens": 6, "context": "document"}, store=store)
    return Engine(settings, library=Library(folder / "library.sqlite"))


def random_layers(layers=2, heads=2, tokens=100, dim=16, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, heads, tokens, dim, generator=generator).to(dtype),
             torch.randn(1, heads, tokens, dim, generator=generator).to(dtype)) for _ in range(layers)]


def make_key(sha="a" * 64, storage="model", tokens=100, **changes) -> sc.StateKey:
    fields = dict(sha256=sha, model_id="m", model_revision="r1", dtype="float32", prefix_tokens=tokens,
                  layout_hash="h", storage_format=storage, variant="prefill=dense")
    return sc.StateKey(**{**fields, **changes})


# ---------------------------------------------------------------- restore is exact


def test_restored_state_equals_the_computed_one_in_a_new_engine(tiny_model_dir, tmp_path, fact_pdf):
    from transformers import DynamicCache

    first = make_engine(tiny_model_dir, tmp_path, cache_format="model")  # the model's precision: exact
    doc = first.open_document(fact_pdf)
    cold = first.ask(doc, "What is the launch code?")
    computed, _ = first.readings.whole(doc)
    assert not cold.cache_hit and cold.timings["prefill_s"] > 0 and cold.timings["state_from"] == "prefill"

    second = make_engine(tiny_model_dir, tmp_path, cache_format="model")  # as after a restart: nothing in memory
    doc2 = second.open_document(fact_pdf)
    warm = second.ask(doc2, "What is the launch code?")
    restored, _ = second.readings.whole(doc2)
    assert isinstance(restored.cache, DynamicCache)
    assert restored.cache.get_seq_length() == computed.cache.get_seq_length() == len(doc.prefix_ids())
    for mine, theirs in zip(restored.cache.layers, computed.cache.layers, strict=True):
        assert torch.equal(mine.keys, theirs.keys) and torch.equal(mine.values, theirs.values)
    assert torch.equal(restored.last_logits, computed.last_logits)
    assert warm.cache_hit and warm.timings["state_from"] == "disk"
    assert warm.timings["prefill_s"] == 0 and warm.timings["restore_s"] > 0
    assert warm.answer == cold.answer
    assert warm.to_json()["cache_hit"] is True and "restore_s" in warm.to_json()["timings"]


@pytest.mark.parametrize("storage, max_error", [("fp16", 2e-3), ("int8", 3e-2)])
def test_compact_formats_restore_close_values(tmp_path, storage, max_error):
    layers = random_layers(tokens=300)
    layers[0][0][:, :, :, 3] *= 40  # an outlier key channel, as real models have
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(storage=storage, tokens=300), layers, torch.zeros(10))
    restored = cache.load(make_key(storage=storage, tokens=300), torch.float32)
    for (keys, values), (k2, v2) in zip(layers, restored.layers):
        for original, back in ((keys, k2), (values, v2)):
            assert back.dtype == torch.float32 and back.shape == original.shape
            relative = (back - original).abs().max() / original.abs().max()
            assert 0 < relative < max_error


def test_int8_is_about_half_of_fp16(tmp_path):
    layers = random_layers(layers=4, heads=3, tokens=512, dim=64)
    cache = sc.StateCache(tmp_path / "states.sqlite")
    sizes = {}
    for storage in sc.FORMATS:
        sizes[storage] = cache.store(make_key(storage=storage, tokens=512), layers, torch.zeros(0))
    assert sizes["fp16"] == sizes["model"] // 2
    assert 0.5 < sizes["int8"] / sizes["fp16"] < 0.56  # one fp16 scale per 64 int8 values


def test_bfloat16_model_state_round_trips_exactly(tmp_path):
    layers = random_layers(dtype=torch.bfloat16)
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(dtype="bfloat16"), layers, torch.zeros(3))
    restored = cache.load(make_key(dtype="bfloat16"), torch.bfloat16)
    assert all(torch.equal(a, c) and torch.equal(b, d) for (a, b), (c, d) in zip(layers, restored.layers))


def test_large_state_is_split_into_chunks_with_metadata(tmp_path, monkeypatch):
    monkeypatch.setattr(state_codec, "CHUNK_BYTES", 4096)
    layers = random_layers(tokens=200)  # 200 tokens x 2 heads x 16 x 4 bytes = 25,600 bytes per tensor
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(tokens=200), layers, torch.zeros(1))
    rows = list(cache.db.query("SELECT layer, kind, part, start, shape, dtype, nbytes, checksum, "
                               "length(data) AS size FROM chunks ORDER BY layer, kind, part"))
    assert len(rows) == 2 * 2 * 7  # ceil(25,600 / 4,096) parts per tensor
    assert all(row["nbytes"] == row["size"] <= 4096 and row["dtype"] == "float32" for row in rows)
    assert json.loads(rows[1]["shape"]) == [1, 2, 32, 16] and rows[1]["start"] == 32
    restored = cache.load(make_key(tokens=200), torch.float32)
    assert torch.equal(restored.layers[1][1], layers[1][1])


@pytest.mark.parametrize("change", [{"model_revision": "r2"}, {"dtype": "float16"}, {"storage_format": "int8"},
                                    {"prefix_tokens": 99}, {"layout_hash": "other"}, {"sha256": "b" * 64},
                                    {"variant": "prefill=dga"}, {"model_id": "other"}])
def test_any_key_change_is_a_miss(tmp_path, change):
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(), random_layers(), torch.zeros(1))
    assert cache.load(make_key(), torch.float32) is not None
    assert cache.load(make_key(**change), torch.float32) is None


def test_changed_model_weights_are_a_miss(tiny_model_dir, tmp_path, fact_pdf, bundled_dir):
    from conftest import make_tiny_model

    engine = make_engine(tiny_model_dir, tmp_path)
    engine.ask(engine.open_document(fact_pdf), "q")
    other = make_tiny_model(tmp_path / "other-weights", bundled_dir, seed=1)  # same name, other weights
    retrained = make_engine(other, tmp_path)
    assert retrained.ask(retrained.open_document(fact_pdf), "q").timings["state_from"] == "prefill"
    assert len(retrained.state_cache.entries()) == 2


# ---------------------------------------------------------------- faults


KILL_WRITER = """
    import sys, time, torch
    from engine.store import state_cache as sc
    from test_state_cache import make_key, random_layers

    class SlowChunks(list):  # pauses half way through the write transaction, so the parent can kill it
        def __iter__(self):
            for index, item in enumerate(list.__iter__(self)):
                if index == len(self) // 2:
                    print("MIDWAY", flush=True)
                    time.sleep(60)
                yield item

    cache = sc.StateCache(sys.argv[1])
    original = cache._write
    cache._write = lambda row, chunks: original(row, SlowChunks(chunks))
    cache.store(make_key(sha="b" * 64, tokens=20000), random_layers(tokens=20000), torch.zeros(5))
"""


def test_killed_mid_write_leaves_no_partial_state_and_loses_nothing(tmp_path):
    path = tmp_path / "states.sqlite"
    library = Library(tmp_path / "library.sqlite")
    History(library.db).record(_answer("a" * 64, "kept question"))
    cache = sc.StateCache(path)
    cache.store(make_key(sha="a" * 64), random_layers(), torch.zeros(2))
    cache.close()
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILL_WRITER), str(path)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "MIDWAY", writer.stderr.read()
        assert (tmp_path / "states.sqlite-wal").stat().st_size > 1_000_000  # chunks were being written
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    reopened = sc.StateCache(path)
    assert reopened.load(make_key(sha="b" * 64, tokens=20000), torch.float32) is None  # no partial state
    assert reopened.db.execute("SELECT COUNT(*) FROM chunks WHERE state_id NOT IN (SELECT id FROM states)"
                               ).fetchone()[0] == 0
    kept = reopened.load(make_key(sha="a" * 64), torch.float32)
    assert kept is not None and torch.equal(kept.layers[0][0], random_layers()[0][0])
    assert [e["question"] for e in History(Library(tmp_path / "library.sqlite").db).entries("a" * 64)] == \
        ["kept question"]
    reopened.store(make_key(sha="b" * 64, tokens=400), random_layers(tokens=400), torch.zeros(5))  # recomputed
    assert reopened.load(make_key(sha="b" * 64, tokens=400), torch.float32) is not None
    assert len(reopened.entries()) == 2


def test_exception_mid_transaction_rolls_back_the_whole_state(tmp_path, monkeypatch):
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(sha="a" * 64), random_layers(), torch.zeros(2))
    monkeypatch.setattr(cache.db, "execute", _fail_on_fourth_chunk(cache.db.execute))
    with pytest.raises(sqlite3.IntegrityError, match="simulated"):
        cache.store(make_key(sha="b" * 64, tokens=400), random_layers(tokens=400, layers=3), torch.zeros(2))
    monkeypatch.undo()
    assert not cache.db.conn.in_transaction
    assert cache.load(make_key(sha="b" * 64, tokens=400), torch.float32) is None
    assert cache.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 4  # only the first state's chunks
    assert cache.load(make_key(sha="a" * 64), torch.float32) is not None


def _fail_on_fourth_chunk(execute):
    count = {"chunks": 0}

    def wrapped(sql, params=None):
        if sql.startswith("INSERT INTO chunks"):
            count["chunks"] += 1
            if count["chunks"] == 4:
                raise sqlite3.IntegrityError("simulated failure in the middle of a state")
        return execute(sql, params) if params is not None else execute(sql)
    return wrapped


def test_bad_checksum_is_set_aside_and_the_answer_recomputed(tiny_model_dir, tmp_path, fact_pdf):
    engine = make_engine(tiny_model_dir, tmp_path)
    doc = engine.open_document(fact_pdf)
    first = engine.ask(doc, "What is the launch code?")
    db = sqlite3.connect(tmp_path / "states.sqlite")
    with db:  # flip one byte in one chunk, keeping its recorded checksum
        rowid, data = db.execute("SELECT rowid, data FROM chunks WHERE layer = 1 AND kind = 'v'").fetchone()
        db.execute("UPDATE chunks SET data = ? WHERE rowid = ?", [bytes([data[0] ^ 0xFF]) + data[1:], rowid])
    db.close()
    again = make_engine(tiny_model_dir, tmp_path)
    answer = again.ask(again.open_document(fact_pdf), "What is the launch code?")
    assert answer.timings["state_from"] == "prefill" and not answer.cache_hit
    assert answer.answer == first.answer
    assert "damaged (checksum mismatch in layer 1 v part 0)" in " ".join(answer.notices)
    bad = again.state_cache.quarantined()
    assert len(bad) == 1 and bad[0]["reason"].startswith("checksum mismatch") and bad[0]["sha256"] == doc.sha256
    assert again.state_cache.db.execute("SELECT COUNT(*) FROM quarantine_chunks").fetchone()[0] > 0
    third = make_engine(tiny_model_dir, tmp_path)  # the recomputed state was stored again
    assert third.ask(third.open_document(fact_pdf), "What is the launch code?").timings["state_from"] == "disk"
    assert [e["question"] for e in third.history(doc.sha256)] == ["What is the launch code?"] * 3


def test_older_format_version_is_set_aside(tmp_path):
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(), random_layers(), torch.zeros(2))
    cache.db.execute("UPDATE states SET format_version = 0")
    assert cache.load(make_key(), torch.float32) is None
    assert [row["reason"] for row in cache.quarantined()] == [f"format version 0, expected {sc.FORMAT_VERSION}"]
    assert "set aside" in cache.take_notices()[0]
    assert cache.entries() == []
    cache.store(make_key(), random_layers(), torch.zeros(2))
    assert cache.load(make_key(), torch.float32) is not None


def test_missing_chunk_is_set_aside(tmp_path):
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(), random_layers(), torch.zeros(2))
    cache.db.execute("DELETE FROM chunks WHERE layer = 1 AND kind = 'k'")
    assert cache.load(make_key(), torch.float32) is None
    assert cache.quarantined()[0]["reason"] == "incomplete: 3 of 4 chunks"


@pytest.mark.parametrize("damage", ["not sqlite", "truncated"])
def test_damaged_database_file_is_moved_aside(tiny_model_dir, tmp_path, fact_pdf, damage):
    engine = make_engine(tiny_model_dir, tmp_path)
    doc = engine.open_document(fact_pdf)
    engine.ask(doc, "What is the launch code?")
    engine.state_cache.close()
    path = tmp_path / "states.sqlite"
    if damage == "not sqlite":
        path.write_bytes(b"this is not a database at all\n" * 100)
    else:
        engine2 = make_engine(tiny_model_dir, tmp_path, cache_format="fp16")  # a second state: more pages
        engine2.ask(engine2.open_document(fact_pdf), "q")
        engine2.state_cache.close()
        assert not (tmp_path / "states.sqlite-wal").exists()  # checkpointed on close
        with open(path, "r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    original = path.read_bytes()
    again = make_engine(tiny_model_dir, tmp_path)
    answer = again.ask(again.open_document(fact_pdf), "What is the launch code?")
    assert answer.answer is not None and answer.timings["state_from"] == "prefill"
    reason = "not a SQLite database" if damage == "not sqlite" else "truncated"
    aside = [p for p in tmp_path.glob("states.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == original  # kept, not deleted
    assert reason in " ".join(answer.notices) and f"moved to {aside[0]}" in " ".join(answer.notices)
    assert len(again.state_cache.entries()) == 1  # the new cache holds the recomputed state
    assert len(again.history(doc.sha256)) == (2 if damage == "not sqlite" else 3)  # in the library: untouched
    later = make_engine(tiny_model_dir, tmp_path)
    assert later.ask(later.open_document(fact_pdf), "again").timings["state_from"] == "disk"


def test_damage_found_while_reading_moves_the_file_aside(tmp_path):
    path = tmp_path / "states.sqlite"
    cache = sc.StateCache(path)
    cache.store(make_key(tokens=2000), random_layers(tokens=2000), torch.zeros(2))
    cache.close()
    with open(path, "r+b") as handle:  # garbage over the pages after the schema, header intact
        handle.seek(sc.PAGE_SIZE * 3)
        handle.write(os.urandom(sc.PAGE_SIZE * 4))
    damaged = sc.StateCache(path)
    assert damaged.load(make_key(tokens=2000), torch.float32) is None
    notices = damaged.take_notices()
    aside = [p for p in tmp_path.glob("states.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and len(notices) == 1 and f"moved to {aside[0]}" in notices[0]
    damaged.store(make_key(tokens=2000), random_layers(tokens=2000), torch.zeros(2))
    assert damaged.load(make_key(tokens=2000), torch.float32) is not None


TWO_PROCESSES = """
    import sys, time, torch
    from engine.store import state_cache as sc
    from engine.store.history import History
    from engine.library.documents import Library
    from test_state_cache import make_key, random_layers, _answer

    folder, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cache = sc.StateCache(folder + "/states.sqlite", cap_bytes=10**9)
    history = History(Library(folder + "/library.sqlite").db)
    layers = random_layers(layers=4, heads=4, tokens=1500, dim=64, seed=len(name))  # ~6 MB per state
    while time.time() < start:
        time.sleep(0.01)
    for round in range(6):
        cache.store(make_key(sha=name * 64, tokens=1500, layout_hash=str(round % 2)), layers, torch.zeros(4))
        other = "x" if name == "y" else "y"
        cache.load(make_key(sha=other * 64, tokens=1500, layout_hash="0"), torch.float32)
        history.record(_answer(name * 64, f"{name} {round}"))
    print("done", name, flush=True)
"""


def test_two_processes_use_the_database_at_once(tmp_path):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    start = str(time.time() + 8)  # both start writing at the same moment, after their imports
    workers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(TWO_PROCESSES), str(tmp_path), name, start],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name in ("x", "y")]
    results = [worker.communicate(timeout=180) for worker in workers]
    for worker, (out, err) in zip(workers, results):
        assert worker.returncode == 0, err
        assert "locked" not in err and out.startswith("done")
    cache = sc.StateCache(tmp_path / "states.sqlite")
    assert sorted(e["sha256"][0] for e in cache.entries()) == ["x", "x", "y", "y"]
    assert cache.load(make_key(sha="y" * 64, tokens=1500, layout_hash="1"), torch.float32) is not None
    history = History(Library(tmp_path / "library.sqlite").db)
    assert len(history.entries("x" * 64)) == len(history.entries("y" * 64)) == 6


def test_cap_too_small_answers_anyway_and_says_so_once(tiny_model_dir, tmp_path, fact_pdf):
    engine = make_engine(tiny_model_dir, tmp_path, cache_cap_bytes=10_000)
    doc = engine.open_document(fact_pdf)
    first = engine.ask(doc, "What is the launch code?")
    second = engine.ask(doc, "Who met in the spring?")
    assert first.answer is not None and first.timings["generated_tokens"] > 0
    assert "larger than the cache's size cap" in " ".join(first.notices) and "not saved" in " ".join(first.notices)
    assert second.notices == []  # said once
    assert engine.state_cache.entries() == [] and engine.state_cache.used_bytes() == 0
    assert len(engine.history(doc.sha256)) == 2
    engine.settings.store.cache_cap_bytes = 10**9  # raised in the settings: the next document read is stored
    other = engine.open_document(pdfs.paragraphs_pdf(tmp_path / "other.pdf", [pdfs.PAGE_THREE]))
    assert engine.ask(other, "When are tours?").notices == []
    assert [e["sha256"] for e in engine.state_cache.entries()] == [other.sha256]


def test_disk_full_answers_anyway(tmp_path):
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(sha="a" * 64), random_layers(), torch.zeros(2))
    pages = cache.db.execute("PRAGMA page_count").fetchone()[0]
    cache.db.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLite then reports 'database or disk is full'
    with pytest.raises(sc.StateTooLarge, match="disk is full"):
        cache.store(make_key(sha="b" * 64), random_layers(tokens=3000), torch.zeros(2))
    assert cache.load(make_key(sha="a" * 64), torch.float32) is not None
    assert [e["sha256"] for e in cache.entries()] == ["a" * 64]


def test_filling_the_cap_evicts_least_recently_used(tmp_path):
    one = sc.StateCache(tmp_path / "probe.sqlite").store(make_key(), random_layers(tokens=1000), torch.zeros(2))
    path = tmp_path / "states.sqlite"
    cache = sc.StateCache(path, cap_bytes=int(one * 3.5))
    for name in "abc":
        cache.store(make_key(sha=name * 64, tokens=1000), random_layers(tokens=1000), torch.zeros(2))
        time.sleep(0.01)
    size_full = path.stat().st_size + (path.with_name("states.sqlite-wal").stat().st_size)
    assert cache.load(make_key(sha="a" * 64, tokens=1000), torch.float32) is not None  # a is now the most recent
    cache.store(make_key(sha="d" * 64, tokens=1000), random_layers(tokens=1000), torch.zeros(2))
    assert sorted(e["sha256"][0] for e in cache.entries()) == ["a", "c", "d"]  # b was least recently used
    assert cache.used_bytes() <= cache.cap_bytes
    cache.store(make_key(sha="e" * 64, tokens=2000), random_layers(tokens=2000), torch.zeros(2))  # twice as big
    assert sorted(e["sha256"][0] for e in cache.entries()) == ["d", "e"]  # c, then a, were least recent
    assert cache.used_bytes() <= cache.cap_bytes
    cache.clear()
    cache.close()
    assert path.stat().st_size <= 16 * sc.PAGE_SIZE < size_full  # freed pages went back to the disk


def test_changed_pdf_at_the_same_path_is_a_new_document(tiny_model_dir, tmp_path):
    path = tmp_path / "notes.pdf"
    pdfs.fact_pdf(path)
    engine = make_engine(tiny_model_dir, tmp_path)
    old = engine.open_document(path)
    engine.ask(old, "What is the launch code?")
    pdfs.paragraphs_pdf(path, [pdfs.PAGE_ONE, "The secret launch code of the observatory is 9981."])
    later = make_engine(tiny_model_dir, tmp_path)
    new = later.open_document(path)
    assert new.sha256 != old.sha256 and "9981" in new.ingested.text
    answer = later.ask(new, "What is the launch code?")
    assert answer.timings["state_from"] == "prefill" and answer.document["sha256"] == new.sha256
    assert len(later.state_cache.entries()) == 2
    same_engine = engine.ask(engine.open_document(path), "What is the launch code?")  # engine with old in memory
    assert same_engine.document["sha256"] == new.sha256 and same_engine.timings["state_from"] == "disk"


def test_no_cache_setting_neither_reads_nor_writes(tiny_model_dir, tmp_path, fact_pdf):
    first = make_engine(tiny_model_dir, tmp_path)
    first.ask(first.open_document(fact_pdf), "q")
    stored = first.state_cache.entries()
    engine = make_engine(tiny_model_dir, tmp_path, use_cache=False)
    answer = engine.ask(engine.open_document(fact_pdf), "q")
    assert answer.timings["state_from"] == "prefill" and not answer.cache_hit  # a stored state was not used
    assert make_engine(tiny_model_dir, tmp_path).state_cache.entries() == stored  # nor written


# ---------------------------------------------------------------- command line


def docfocus(home, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def test_cache_list_and_clear_commands(tmp_path):
    pdf = pdfs.fact_pdf(tmp_path / "facts.pdf")
    from engine.ingest.extract import file_sha256

    sha = file_sha256(pdf)
    cache = sc.StateCache(tmp_path / "states.sqlite")
    cache.store(make_key(sha=sha, tokens=300), random_layers(tokens=300), torch.zeros(2), title="Observatory notes",
                path=str(pdf))
    cache.store(make_key(sha="b" * 64), random_layers(), torch.zeros(2), title="Other")
    History(Library(tmp_path / "library.sqlite").db).record(_answer(sha, "kept"))
    cache.close()
    listed = docfocus(tmp_path, "cache", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Observatory notes" in listed.stdout and "300" in listed.stdout and "Other" in listed.stdout
    assert "2 states" in listed.stdout
    as_json = json.loads(docfocus(tmp_path, "cache", "list", "--json").stdout)
    assert {row["title"] for row in as_json["states"]} == {"Observatory notes", "Other"}
    cleared = docfocus(tmp_path, "cache", "clear", "--document", str(pdf))
    assert cleared.returncode == 0 and "Removed 1 " in cleared.stdout, cleared.stderr
    assert [e["title"] for e in sc.StateCache(tmp_path / "states.sqlite").entries()] == ["Other"]
    assert docfocus(tmp_path, "cache", "clear").returncode == 0
    assert sc.StateCache(tmp_path / "states.sqlite").entries() == []
    assert len(History(Library(tmp_path / "library.sqlite").db).entries(sha)) == 1  # history kept
    missing = docfocus(tmp_path, "cache", "clear", "--document", str(tmp_path / "nope.pdf"))
    assert missing.returncode != 0 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def _answer(sha: str, question: str):
    """A minimal Answer for history rows written without a model."""
    from engine.api import Answer, Evidence

    return Answer(question=question, answer=f"answer to {question}", document={"sha256": sha}, model={"id": "m"},
                  attention={"mode": "dense"}, timings={"total_s": 0.1},
                  evidence=[Evidence(page=1, text="passage", score=0.5, boxes=[[1.0, 2.0, 3.0, 4.0]])],
                  cache_hit=False)
