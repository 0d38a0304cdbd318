"""A data folder (or a states.sqlite) that cannot be written: answers still come, commands say why, nothing changes.

chmod does not stop root, which ignores permissions; as root these tests run the command line under
``setpriv`` without the capabilities that bypass them, so the folder is as read-only as for any user.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_state_cache import make_key, random_layers

from engine.api import Engine, EngineSettings
from engine.library.documents import Library
from engine.store import state_cache as sc
from engine.store.history import History

from conftest import ROOT

DROP_PERMISSION_BYPASS = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def _blocks_writes(prefix: list[str], folder: Path) -> bool:
    probe = subprocess.run([*prefix, sys.executable, "-c", "import sys; open(sys.argv[1], 'w')", str(folder / "probe")],
                           capture_output=True, timeout=60)
    return probe.returncode != 0


@pytest.fixture(scope="module")
def as_a_user(tmp_path_factory) -> list[str]:
    """A command prefix under which a read-only folder really cannot be written."""
    folder = tmp_path_factory.mktemp("probe")
    folder.chmod(0o555)
    try:
        candidates = [[]] if os.geteuid() != 0 else []
        if shutil.which("setpriv"):
            candidates.append(DROP_PERMISSION_BYPASS)
        for prefix in candidates:
            if _blocks_writes(prefix, folder):
                return prefix
    finally:
        folder.chmod(0o755)
    pytest.skip("running as root without setpriv (or without the right to drop capabilities): "
                "no way to make a folder read-only for this process here")


@pytest.fixture()
def home(tiny_model_dir, tmp_path, fact_pdf) -> Path:
    """A data folder as a first run leaves it: the document, one answer in its history, its stored state."""
    folder = tmp_path / "home"
    folder.mkdir()
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 4}),
                    library=Library(folder / "library.sqlite"))
    engine.ask(engine.open_document(fact_pdf), "What is the launch code?")
    engine.state_cache.close()
    engine.library.db.conn.close()  # checkpoints: no -wal or -shm file is left
    assert sorted(path.name for path in folder.iterdir()) == ["library.sqlite", "states.sqlite"]
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def docfocus(prefix: list[str], home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), DOCFOCUS_HOME=str(home))
    return subprocess.run([*prefix, sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)


def ask_twice(prefix, home, tiny_model_dir, pdf) -> subprocess.CompletedProcess:
    return docfocus(prefix, home, "ask", str(pdf), "What is the launch code?", "Who met in the spring?",
                    "--model", str(tiny_model_dir), "--device", "cpu", "--max-new-tokens", "4", "--json")


def test_a_read_only_data_folder_still_answers_and_says_once_that_nothing_is_saved(as_a_user, home, tiny_model_dir,
                                                                                   fact_pdf):
    before = snapshot(home)
    home.chmod(0o555)
    try:
        result = ask_twice(as_a_user, home, tiny_model_dir, fact_pdf)
    finally:
        home.chmod(0o755)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2  # both questions answered
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 2, result.stderr  # one note per fact, with the first answer only
    library, cache = notes
    assert f"cannot write its library {home / 'library.sqlite'} (the folder {home} is read-only)" in library
    assert "not saved in the chat history" in library
    assert f"answers without its document cache {home / 'states.sqlite'} (the folder {home} is read-only)" in cache
    assert snapshot(home) == before  # nothing written, nothing lost


@pytest.mark.parametrize("command", [["history", "PDF"], ["history", "PDF", "--clear"], ["cache", "list"],
                                     ["cache", "clear"]])
def test_commands_on_a_read_only_data_folder_say_why_and_exit_2(as_a_user, home, fact_pdf, command):
    before = snapshot(home)
    home.chmod(0o555)
    try:
        result = docfocus(as_a_user, home, *[str(fact_pdf) if part == "PDF" else part for part in command])
    finally:
        home.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"the folder {home} is read-only" in result.stderr and "Nothing" in result.stderr
    assert "Make that folder writable" in result.stderr and "Note:" not in result.stderr
    assert snapshot(home) == before


def test_a_read_only_state_file_alone_answers_without_the_cache_and_keeps_the_history(as_a_user, home,
                                                                                       tiny_model_dir, fact_pdf):
    states = home / "states.sqlite"
    stored = states.read_bytes()
    states.chmod(0o444)
    try:
        result = ask_twice(as_a_user, home, tiny_model_dir, fact_pdf)
        cleared = docfocus(as_a_user, home, "cache", "clear")
    finally:
        states.chmod(0o644)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and f"answers without its document cache {states} (the file is read-only)" in notes[0]
    assert states.read_bytes() == stored
    library = Library(home / "library.sqlite")
    assert len(History(library.db).entries(library.recent()[0]["sha256"])) == 3  # the library was writable
    assert cleared.returncode == 2 and "the file is read-only" in cleared.stderr, cleared.stderr
    assert "Traceback" not in cleared.stderr and states.read_bytes() == stored


# ---------------------------------------------------------------- in process: a folder that cannot exist


def test_a_cache_whose_folder_cannot_be_made_is_off_and_says_so_once(tmp_path):
    (tmp_path / "a-file").write_text("a regular file, where the data folder should be")
    cache = sc.StateCache(tmp_path / "a-file" / "states.sqlite")
    assert cache.load(make_key(), torch.float32) is None
    assert cache.store(make_key(), random_layers(), torch.zeros(2)) == 0  # no error: the answer does not need it
    assert cache.entries() == [] and cache.clear() == (0, 0)
    assert cache.unavailable == f"{tmp_path / 'a-file'} is not a folder DocFocus can create or write"
    notices = cache.take_notices()
    assert len(notices) == 1 and "answers without its document cache" in notices[0]
    assert cache.load(make_key(), torch.float32) is None and cache.take_notices() == []


def test_a_library_that_cannot_be_written_raises_a_clear_error_or_answers_in_memory(tmp_path):
    from engine.store.dbfile import DatabaseNotWritable

    (tmp_path / "a-file").write_text("a regular file, where the data folder should be")
    path = tmp_path / "a-file" / "library.sqlite"
    with pytest.raises(DatabaseNotWritable, match="cannot write its library .* Nothing in it was changed"):
        Library(path)
    library = Library.or_in_memory(path)
    History(library.db).record(_answer("a" * 64))
    assert len(History(library.db).entries("a" * 64)) == 1  # works, in memory
    notices = library.take_notices()
    assert len(notices) == 1 and "not saved in the chat history" in notices[0] and library.take_notices() == []


def _answer(sha: str):
    from test_state_cache import _answer as make

    return make(sha, "kept in memory")
