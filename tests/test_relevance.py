"""The relevance pipeline without a model: passages, word match, ranking, selection, evidence, highlights,
clean-up and quotes (engine/retrieval/passages.py, relevance.py, postprocess.py, text.py)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.answer import evidence as relevance
from engine.answer import postprocess
from engine.ingest.extract import ingest_pdf
from engine.retrieval import passages
from engine.retrieval import ranking as ranking_ops
from engine.retrieval import terms as text

import pdfs

READ_FWF = ("Function read.fwf provides a simple way to read such files, specifying a vector of field widths. "
            "The function reads the file into memory as whole lines.")
XPORT = "Function read.xport reads a file in SAS Transport format and returns a list of data frames."
FILLER = ("Data can be imported from many sources. Spreadsheets are one common source of data and "
          "databases are another. Each chapter below covers one kind of source in some detail. ")


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    """Four pages; page 2 holds read.fwf, page 3 read.xport."""
    path = pdfs.paragraphs_pdf(tmp_path_factory.mktemp("manual") / "manual.pdf",
                               [FILLER * 3, FILLER + READ_FWF + " " + FILLER, XPORT + " " + FILLER * 2, FILLER * 2])
    document = ingest_pdf(path)
    return document, _offsets(document)


def _offsets(document) -> np.ndarray:
    """Pretend tokens: one per word, spanning the word's characters."""
    return np.array([[w.start, w.end] for w in document.words], dtype=np.int64)


def test_passages_are_whole_words_on_one_page_of_about_the_target_size(manual):
    document, offsets = manual
    cut = passages.cut(document, offsets, target=24)
    assert cut.start[0] == 0 and cut.end[-1] == len(offsets) and (cut.start[1:] == cut.end[:-1]).all()
    for number in range(len(cut)):
        pages = {document.words[i].page for i in range(cut.first_word[number], cut.end_word[number])}
        assert pages == {int(cut.page[number])}  # a passage never crosses a page
    sizes = cut.end - cut.start
    assert sizes.max() <= 36 and np.median(sizes) >= 12
    assert cut.of_token(len(offsets)).tolist() == np.repeat(np.arange(len(cut)), sizes).tolist()


def test_passages_end_at_sentence_ends_where_one_is_near(manual):
    document, offsets = manual
    cut = passages.cut(document, offsets, target=24)
    texts = [cut.text(document, n) for n in range(len(cut))]
    assert sum(t.rstrip().endswith(".") for t in texts) >= 0.8 * len(texts)


def test_word_match_finds_the_passage_with_the_rare_terms(manual):
    document, offsets = manual
    cut = passages.cut(document, offsets, target=24)
    scores = passages.lexical_scores(cut, document, "Which function reads fixed-width files given field widths?")
    best = int(np.argmax(scores))
    assert cut.page[best] == 1 and "field widths" in cut.text(document, best)
    assert passages.lexical_scores(cut, document, "the of and").sum() == 0  # function words match nothing


def test_attention_is_compared_within_its_segment():
    cut = passages.Passages(np.arange(4), np.arange(1, 5), np.array([0, 2, 4, 6]), np.array([2, 4, 6, 8]),
                            np.zeros(4, dtype=np.int64))
    mass = np.array([5, 5, 5, 5, 1, 1, 1, 4], dtype=float)  # segment 1 is loud everywhere, segment 2 is not
    scores = passages.attention_scores(cut, mass, [(0, 4), (4, 8)])
    assert int(np.argmax(scores)) == 3  # the token that stands out in its own segment wins
    assert scores[0] == scores[1] == 0


def test_selection_fills_the_budget_best_first_with_the_next_passage():
    cut = passages.Passages(np.arange(6), np.arange(1, 7), np.arange(0, 60, 10), np.arange(10, 70, 10),
                            np.array([0, 0, 0, 1, 1, 1]))
    ranking = np.array([0.1, 0.2, 3.0, 0.3, 2.0, 0.0])
    chosen = passages.select(cut, ranking, budget=30, follow=1)
    assert chosen[0] == 2 and 4 in chosen and len(chosen) == 3
    assert 3 not in passages.select(cut, ranking, budget=30, follow=1)[:1]
    assert passages.select(cut, ranking, budget=10, follow=0) == [2]


def test_the_word_match_ranks_and_says_when_no_word_of_the_question_matched(tiny_engine, tmp_path):
    path = pdfs.paragraphs_pdf(tmp_path / "manual.pdf", [FILLER * 3, FILLER + READ_FWF + " " + FILLER,
                                                         XPORT + " " + FILLER * 2, FILLER * 2])
    doc = tiny_engine.open_document(path)
    candidates = ranking_ops.Candidates.of_document(doc)
    question = "Which function reads fixed-width files given field widths?"
    lexical, weights = ranking_ops.word_match(candidates, question)
    ranked = ranking_ops.rank(candidates, lexical, weights)
    assert "read.fwf" in candidates.text(ranked.order()[0]) and ranked.signals == ["words"]
    assert ranked.parts["words"].tolist() == lexical.tolist() and {"width", "field"} <= set(weights)
    nothing = ranking_ops.rank(candidates, *ranking_ops.word_match(candidates, "Qwzx blorft?"))
    assert nothing.signals == [] and not np.any(nothing.score)  # nothing matched: no signal claims the choice


def test_evidence_lists_cited_passages_first_and_only_relevant_ones(tiny_engine, tmp_path):
    path = pdfs.paragraphs_pdf(tmp_path / "manual.pdf", [FILLER * 3, FILLER + READ_FWF + " " + FILLER,
                                                         XPORT + " " + FILLER * 2, FILLER * 2])
    doc = tiny_engine.open_document(path)
    candidates = ranking_ops.Candidates.of_document(doc)
    ranked = ranking_ops.rank(candidates, *ranking_ops.word_match(candidates, "Which function reads fixed-width "
                                                                               "files given field widths?"))
    listed, rows = relevance.evidence(candidates, ranked.score, cited=[])
    assert listed and listed[0].page == 2 and listed[0].score == 1.0 and rows[0] == ranked.order()[0]
    assert len(listed) < len(candidates) and all(a.score >= b.score for a, b in zip(listed, listed[1:]))
    xport = next(n for n in range(len(candidates)) if "xport" in candidates.text(n))
    assert relevance.evidence(candidates, ranked.score, cited=[xport])[0][0].page == 3


def test_highlights_are_content_words_of_the_cited_passage(manual):
    document, offsets = manual
    cut = passages.cut(document, offsets, target=24)
    number = next(n for n in range(len(cut)) if "read.fwf" in cut.text(document, n))
    ranges = [(int(cut.first_word[number]), int(cut.end_word[number]))]
    token_word = np.arange(len(document.words))
    lights = relevance.highlights(document, ranges, token_word, None, ["read.fwf"], "Which function reads files?")
    words = {document.words[i].text: i for i in range(*ranges[0])}
    texts = {tuple(h.box): h for h in lights}
    assert lights and all(h.page == 2 for h in lights)
    strongest = max(lights, key=lambda h: h.weight)
    assert strongest.weight == 1.0 and document.words[words["read.fwf"]].x0 == pytest.approx(strongest.box[0], abs=0.1)
    assert all(text.is_content_word(document.words[i].text) for i in range(*ranges[0])
               if tuple(relevance.word_box(document.words[i])) in texts)


def test_clean_removes_repeats_and_empty_frames():
    assert postprocess.clean("The answer is:\n\nThe answer is:", "complete").text == ""
    assert postprocess.clean("The answer to this question is:", "complete").degenerate
    cleaned = postprocess.clean("The function read.fwf reads them. The function read.fwf reads them.", "complete")
    assert cleaned.text == "The function read.fwf reads them." and cleaned.degenerate
    assert postprocess.clean("The answer is: read.fwf", "complete").text == "Read.fwf"
    cut = postprocess.clean("It is 38 meters tall. It has 212 steps and the walls are two", "length")
    assert cut.text == "It is 38 meters tall." and cut.finish == "length"
    looped = postprocess.clean("It is read.csv2, the default.\n\nThe function to read CSV files is read.csv, which is the",
                               "complete", looped=True)  # generation stopped as it began to repeat itself
    assert looped.text == "It is read.csv2, the default." and looped.degenerate and looped.finish == "complete"


def test_best_sentence_quotes_what_answers_the_question(manual):
    document, offsets = manual
    cut = passages.cut(document, offsets, target=24)
    question = "Which function reads fixed-width files given a vector of field widths?"
    order = np.argsort(-passages.lexical_scores(cut, document, question)).tolist()
    quote = postprocess.best_sentence(document, cut, order[:3], passages.question_weights(cut, document, question))
    assert quote.text.startswith("Function read.fwf provides") and quote.text.endswith("field widths.")
    assert " ".join(w.text for w in document.words[quote.first_word:quote.end_word]) == quote.text


def test_stems_and_sentences():
    assert [text.stem(w) for w in ("reads", "files", "ferries", "boxes", "class", "widths", "reading")] == \
        ["read", "file", "ferry", "box", "class", "width", "read"]
    body = "First one. Second one!\n\nA heading\nThird."
    assert [body[a:b] for a, b in text.sentences(body)] == ["First one.", "Second one!", "A heading\nThird."]
    assert text.terms("The read.fwf function, 5831-22!") == ["read.fwf", "function", "5831-22"]


def test_a_quote_from_a_definition_list_names_the_term_it_describes(tmp_path):
    """A description ("Allow the user to highlight ...") quoted without its term would not say which function it
    describes; a heading above an unindented paragraph is not a term."""
    path = pdfs.text_pdf(tmp_path / "graphics.pdf", [[
        (72, 70, "Interacting with graphics"),
        (72, 92, "Some functions let users add information to a plot with the mouse."),
        (72, 124, "locator(n, type)"), (108, 146, "Waits for the user to select locations on the current plot."),
        (72, 178, "identify(x, y, labels)"),
        (108, 200, "Allow the user to highlight any of the points defined by x and y."),
        (108, 214, "It returns the indices of the selected points.")]])
    document = ingest_pdf(path)
    cut = passages.cut(document, _offsets(document), target=24)

    def quote(question: str) -> postprocess.Quote:
        order = np.argsort(-passages.lexical_scores(cut, document, question)).tolist()
        return postprocess.best_sentence(document, cut, order[:3], passages.question_weights(cut, document, question))

    found = quote("How can the user highlight the points defined by x and y?")
    assert found.text == "identify(x, y, labels): Allow the user to highlight any of the points defined by x and y."
    assert found.term == "identify(x, y, labels)" and found.sentence.startswith("Allow the user")  # chosen by this
    assert [w.text for w in document.words[found.first_word:found.end_word]][:4] == ["identify(x,", "y,", "labels)",
                                                                                    "Allow"]
    assert quote("Which function waits for the user to select locations?").text.startswith("locator(n, type): Waits")
    assert quote("Can users add information to a plot with the mouse?").text == \
        "Some functions let users add information to a plot with the mouse."
