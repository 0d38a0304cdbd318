"""Issue 23, item 6: a question has a stated limit (MAX_QUESTION_CHARS), refused at once with exit status 2 on the
command line (a message under the box in the window: tests/gui/test_faults_question_box.py), and reading a question
shows progress ("Reading the question")."""
from __future__ import annotations

import random
import time

import pytest

from app.cli import main
from engine.errors import QuestionError
from engine.model.prompt import MAX_QUESTION_CHARS, check_question

from conftest import ROOT

SAMPLE = str(ROOT / "resources" / "sample.pdf")


def words(count: int, seed: int = 0) -> str:
    vocabulary = (ROOT / "README.md").read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    return " ".join(rng.choice(vocabulary) for _ in range(count))


def test_a_5000_word_question_exits_2_at_once_without_loading_a_model(capsys, tiny_model_dir):
    question = words(5000)
    started = time.perf_counter()
    assert main(["ask", SAMPLE, "How tall is the tower?", question, "--model", str(tiny_model_dir)]) == 2
    assert time.perf_counter() - started < 5  # before the document and the model are even opened
    err = capsys.readouterr().err
    assert f"The question is {len(question.strip()):,} characters long" in err
    assert "DocFocus takes questions of up to 1,000 characters" in err and "Traceback" not in err
    assert main(["ask", "--library", question]) == 2  # the library's questions too
    assert "characters long" in capsys.readouterr().err


def test_the_limit_is_in_characters_after_trimming():
    assert check_question("  " + "a" * MAX_QUESTION_CHARS + "\n") == "a" * MAX_QUESTION_CHARS
    with pytest.raises(QuestionError, match="1,001 characters long"):
        check_question("a" * (MAX_QUESTION_CHARS + 1))
    with pytest.raises(QuestionError, match="empty"):
        check_question(" \n ")


def test_the_engine_refuses_it_too_and_reading_a_question_shows_progress(tiny_engine, fact_pdf):
    doc = tiny_engine.open_document(fact_pdf)
    with pytest.raises(QuestionError, match="characters long"):
        tiny_engine.ask(doc, words(400))
    stages = []
    question = words(150, seed=1)[:MAX_QUESTION_CHARS]
    tiny_engine.ask(doc, question, progress=lambda stage, done, total: stages.append((stage, done, total)))
    reading = [(done, total) for stage, done, total in stages if stage == "Reading the question"]
    assert reading[0][0] == 0 and reading[-1][0] == reading[-1][1] > 200, stages  # from the start to the end
    assert len(reading) >= 5 and [done for done, _ in reading] == sorted(done for done, _ in reading)  # in steps
