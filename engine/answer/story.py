"""One story: from the generated text and the ranking to the complete ``Answer``, for one document or several.

The text is cleaned (engine/answer/postprocess.py) and judged against the passages it read
(engine/answer/verdict.py) as soon as it ends. The text the user saw stream is never replaced: an answer that is
not supported is kept, marked so, with the document's own best sentence beside it (a quote that answers the
question, or else the closest passage). The evidence list, the citations (best first, one per page) and the
highlights all come from the same ranking and name their document. The Answer is built once, with every fact in
it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..retrieval import terms as words_text
from ..retrieval.ranking import Ranking
from . import evidence as shown
from . import postprocess, support, verdict
from .generate import Generated
from .result import Answer, Citation, Quote


# What a place down the ranking costs a quote, in shares of the question's terms: the ranking (words, meaning,
# the model's check) knows more than the words a sentence shares with the question. Measured over the 67
# questions of the manual sets without generating (the quote's sentence holds the answer / is on its page):
# 0.01 -> 38 / 47, 0.05 -> 42 / 52, 0.1 -> 43 / 52; no set lost either count at 0.05.
QUOTE_RANK_STEP = 0.05


@dataclass
class Facts:
    """What the engine knows about how an answer was made, given before the Answer is built: the document (or
    library scope) and model descriptions, the attention used, timings so far, whether the reading came from
    the store, notices for the user, and when the question was asked."""

    document: dict
    model: dict
    attention: dict
    timings: dict
    cache_hit: bool
    notices: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    library: bool = False


@dataclass
class _Support:
    """What the answer rests on: scope rows cited (best first), their word ranges, the words to highlight, and the
    quote shown beside an unsupported answer (with its row)."""

    cited: list[int]
    ranges: dict[int, tuple[int, int]]
    terms: list[str]
    quote: tuple[int, postprocess.Quote, bool] | None = None


def tell(question: str, ranking: Ranking, context: list[int], generated: Generated,
         answer_mass: dict[str, np.ndarray], facts: Facts, quote_allowed: bool = True,
         token_scores: np.ndarray | None = None, checks=None) -> Answer:
    """The Answer: ``context`` are the scope rows the answer read (best first), ``answer_mass`` the answer's
    attention per document token (sha256 -> (L,)), ``checks`` the model's checks (engine/answer/checks.py; a
    stopped answer is judged by its words alone)."""
    candidates = ranking.candidates
    cleaned = postprocess.clean(generated.text, generated.finish, generated.looped, question)
    began = time.perf_counter()
    claim = verdict.Claim(question, cleaned.text, [candidates.text(r) for r in context], ranking.weights,
                          generated.ids, generated.logprobs)
    stopped = generated.finish == "stopped"
    judged, words = verdict.judge(claim, None if stopped else checks)
    rests = _rests_on(candidates, ranking, context, words, judged.supported or stopped, quote_allowed, question)
    verdict_s = round(time.perf_counter() - began, 3)
    evidence, listed = shown.evidence(candidates, ranking.score, rests.cited)
    citations = _citations(evidence, listed, rests.cited)
    lights = []
    for number in dict.fromkeys(int(candidates.doc[r]) for r in rests.ranges):
        handle = candidates.handle_of(number)
        mine = [rests.ranges[r] for r in rests.ranges if int(candidates.doc[r]) == number]
        lights += shown.highlights(handle.ingested, mine, handle.token_word, answer_mass.get(handle.sha256),
                                   rests.terms, question, handle.sha256)
    attention = {**facts.attention, "degenerate": cleaned.degenerate or generated.looped,
                 "ranking": list(ranking.signals)}
    timings = {**facts.timings, **generated.timings, "verdict_s": verdict_s,
               "total_s": round(time.perf_counter() - facts.started, 3)}
    return Answer(question=question.strip(), answer=cleaned.text, document=facts.document, model=facts.model,
                  attention=attention, timings=timings, evidence=evidence, cache_hit=facts.cache_hit,
                  stopped=stopped, notices=list(dict.fromkeys(filter(None, facts.notices))),
                  token_scores=token_scores, citations=citations, supported=judged.supported, highlights=lights,
                  finish=cleaned.finish, generated=generated.text, verdict=judged,
                  quote=_quote(candidates, rests.quote))


def _rests_on(candidates, ranking: Ranking, context: list[int], words: support.Verdict, supported: bool,
              quote_allowed: bool, question: str) -> _Support:
    """The rows a supported answer cites, or the quote beside an unsupported one (and its row as the citation)."""
    cited = [context[i] for i in words.cited] if context else []
    rests = _Support(cited, {row: (int(candidates.first_word[row]), int(candidates.end_word[row])) for row in cited},
                     list(words.found))
    if supported:
        return rests
    best = _best_quote(candidates, context or ranking.order()[:3], ranking.weights)
    if best is None:
        return rests
    row, sentence = best
    answers = quote_allowed and support.coverage(words_text.term_keys(sentence.sentence),
                                                 ranking.weights) >= support.QUOTE_COVERAGE
    return _Support([row], {row: (sentence.first_word, sentence.end_word)}, support.new_terms(sentence.text, question),
                    (row, sentence, answers))


def _citations(evidence, listed: list[int], cited: list[int]) -> list[Citation]:
    """One citation per page of each document, best first; passages cited on the same page share it (boxes
    joined)."""
    by_page: dict[tuple, Citation] = {}
    for row in dict.fromkeys(cited):
        index = listed.index(row)
        item = evidence[index]
        key = ((item.document or {}).get("sha256"), item.page)
        if key in by_page:
            by_page[key].boxes = by_page[key].boxes + list(item.boxes)
        else:
            by_page[key] = Citation(item.page, item.text, index, list(item.boxes), item.document)
    return list(by_page.values())


def _quote(candidates, found) -> Quote | None:
    if found is None:
        return None
    row, sentence, answers = found
    handle = candidates.handle(row)
    words = handle.ingested.words
    boxes = [shown.word_box(words[i]) for i in range(sentence.first_word, sentence.end_word)]
    return Quote(int(candidates.page[row]) + 1, sentence.text, answers, boxes, handle.ref())


def _best_quote(candidates, rows: list[int], weights: dict[str, float]):
    """(row, quote) of the sentence among ``rows`` (best first) holding the most of the question's terms, less
    QUOTE_RANK_STEP per place down the ranking (an earlier row wins ties)."""
    best = None
    for rank, row in enumerate(rows):
        handle = candidates.handle(row)
        quote = postprocess.best_sentence(handle.ingested, handle.passages, [int(candidates.number[row])], weights)
        if quote is not None:
            value = support.coverage(words_text.term_keys(quote.sentence), weights) - QUOTE_RANK_STEP * rank
            if best is None or value > best[0]:
                best = (value, row, quote)
    return None if best is None else (best[1], best[2])
