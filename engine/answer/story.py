"""One story: from the generated text and the ranking to the complete ``Answer``, for one document or several.

The text is cleaned (engine/answer/postprocess.py) and checked against the passages it was given
(engine/answer/support.py); an unsupported answer is replaced by the document's own best sentence (a quote when
it answers, else "Not found" with the closest passage). The evidence list, the citations and the highlights all
come from the same ranking and name their document. The Answer is built once, with every fact in it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..retrieval import terms as words_text
from ..retrieval.ranking import Ranking
from . import evidence as shown
from . import postprocess, support
from .generate import Generated
from .result import Answer, Citation


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


def tell(question: str, ranking: Ranking, context: list[int], generated: Generated,
         answer_mass: dict[str, np.ndarray], facts: Facts, quote_allowed: bool = True,
         token_scores: np.ndarray | None = None) -> Answer:
    """The Answer: ``context`` are the scope rows the answer read (best first), ``answer_mass`` the answer's
    attention per document token (sha256 -> (L,))."""
    candidates, weights = ranking.candidates, ranking.weights
    cleaned = postprocess.clean(generated.text, generated.finish, generated.looped)
    verdict = (support.check(cleaned.text, question, [candidates.text(r) for r in context], weights)
               if cleaned.text else support.Verdict(False, [0]))
    text, supported, answer_terms = cleaned.text, verdict.supported, verdict.found
    cited = [context[i] for i in verdict.cited] if context else []
    ranges = {row: (int(candidates.first_word[row]), int(candidates.end_word[row])) for row in cited}
    if not supported and generated.finish != "stopped":  # a stopped answer stays what the user let it be
        quote = _best_quote(candidates, context or ranking.order()[:3], weights)
        if quote is not None:
            row, sentence = quote
            text, supported, answer_terms = support.quoted(sentence.text, _where(candidates, row, facts.library),
                                                           question, weights, quote_allowed,
                                                           "library" if facts.library else "document")
            cited, ranges = [row], {row: (sentence.first_word, sentence.end_word)}
    evidence, listed = shown.evidence(candidates, ranking.score, cited)
    citations = [Citation(evidence[listed.index(r)].page, evidence[listed.index(r)].text, listed.index(r),
                          evidence[listed.index(r)].boxes, evidence[listed.index(r)].document) for r in cited]
    lights = []
    for number in dict.fromkeys(int(candidates.doc[r]) for r in ranges):
        handle = candidates.handle_of(number)
        mine = [ranges[r] for r in ranges if int(candidates.doc[r]) == number]
        lights += shown.highlights(handle.ingested, mine, handle.token_word, answer_mass.get(handle.sha256),
                                   answer_terms, question, handle.sha256)
    attention = {**facts.attention, "degenerate": cleaned.degenerate or generated.looped,
                 "ranking": list(ranking.signals)}
    timings = {**facts.timings, **generated.timings, "total_s": round(time.perf_counter() - facts.started, 3)}
    return Answer(question=question.strip(), answer=text, document=facts.document, model=facts.model,
                  attention=attention, timings=timings, evidence=evidence, cache_hit=facts.cache_hit,
                  stopped=generated.finish == "stopped", notices=list(dict.fromkeys(filter(None, facts.notices))),
                  token_scores=token_scores, citations=citations, supported=bool(supported), highlights=lights,
                  finish=cleaned.finish, generated=generated.text)


def _best_quote(candidates, rows: list[int], weights: dict[str, float]):
    """(row, quote) of the sentence among ``rows`` (best first) holding the most of the question's terms; an
    earlier row wins ties."""
    best = None
    for rank, row in enumerate(rows):
        handle = candidates.handle(row)
        quote = postprocess.best_sentence(handle.ingested, handle.passages, [int(candidates.number[row])], weights)
        if quote is not None:
            value = support.coverage(words_text.term_keys(quote.text), weights) - 0.01 * rank
            if best is None or value > best[0]:
                best = (value, row, quote)
    return None if best is None else (best[1], best[2])


def _where(candidates, row: int, library: bool) -> str:
    page = f"p. {int(candidates.page[row]) + 1}"
    if not library:
        return page
    return f"{candidates.handle(row).ingested.title or 'document'}, {page}"
