"""The support verdict: an answer is supported when what it adds to the question is in the cited passages."""
from __future__ import annotations

import pytest

from engine.answer import support

PASSAGES = [
    "Function read.fwf provides a simple way to read such files, specifying a vector of field widths.",
    "The function read.xport reads a file in SAS Transport (XPORT) format and returns a list of data frames.",
]


def test_an_answer_found_in_the_passages_is_supported_and_cites_where():
    verdict = support.check("The function read.fwf reads fixed-width format files.",
                            "Which function reads fixed-width format files?", PASSAGES)
    assert verdict.supported and verdict.cited[0] == 0 and "read.fwf" in verdict.found


def test_an_answer_naming_something_else_is_cited_where_that_is():
    verdict = support.check("read.xport", "Which function reads fixed-width format files?", PASSAGES)
    assert verdict.cited == [1]


def test_an_answer_not_in_the_passages_is_not_supported():
    verdict = support.check("The function read.delim is the most convenient way.",
                            "Which function reads fixed-width format files?", PASSAGES)
    assert not verdict.supported and "read.delim" in verdict.missing


def test_an_answer_that_adds_nothing_is_not_supported():
    assert not support.check("The answer is:", "Which function reads fixed-width files?", PASSAGES).supported
    assert not support.check("", "Which function reads fixed-width files?", PASSAGES).supported


def test_a_name_found_only_where_the_question_is_not_discussed_is_not_support():
    passages = [("Fixed-width files have no delimiters. Function read.fwf reads fixed-width "
                                        "files given a vector of field widths."),
                "The SAS Transport format is read by read.xport. It returns a list of data frames."]
    question = "Which function reads fixed-width files given a vector of field widths?"
    assert support.check("read.fwf", question, passages).supported
    wrong = support.check("read.xport", question, passages)
    assert not wrong.supported and wrong.missing == ["read.xport"]


def test_coverage_weighs_rare_terms_more():
    weights = {"field": 2.0, "width": 2.0, "file": 0.5}
    assert support.coverage({"field", "width"}, weights) == pytest.approx(4 / 4.5)
    assert support.coverage({"file"}, weights) == pytest.approx(0.5 / 4.5)
    assert support.coverage(set(), {}) == 0.0


def test_a_misspelt_name_or_a_made_up_number_is_not_supported():
    notes = ["The original notes on S were written in 1990-2 by Bill Venables and David M. Smith when at the "
             "University of Adelaide. The S-\nPlus environment came later."]
    question = "At which university were the original notes on S written?"
    right = support.check("The notes were written by Bill Venables and David M. Smith at the University of Adelaide.",
                          question, notes)
    wrong = support.check("The notes were written by Bill Venables and David M. Smith at the University of "
                          "Adelairaut.", question, notes)
    assert right.supported and not wrong.supported and "adelairaut" in wrong.missing
    assert support.invented("They used S-Plus in 1990.", notes) == []  # a hyphen broken across lines still matches
    assert support.invented("Written in 1994 at Adelaide.", notes) == ["1994"]
    assert support.invented("Functions such as read.fwf2 are used.", PASSAGES) == ["read.fwf2"]
    assert support.invented("Written long ago. Nobody knows.", notes) == []  # capitals that start sentences
