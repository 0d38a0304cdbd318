"""Answering a question: rank the passages, give the model its context, generate, and tell one story.

Two contexts (``AnswerSettings.context``):

- ``passages`` (default): the question's attention over the model's reading of the document, plus its word
  match, ranks the passages (engine/answer/evidence.py); the best ones, up to ``focal`` tokens, are placed right after
  the chat head by RoPE re-positioning (engine/attention/compaction.py) and the answer attends to them alone. A small
  model answers far better from a short relevant context than from a whole document.
- ``document``: the answer attends to the whole document with the chosen attention strategy (dense, DGA, ...;
  engine/attention/strategies.py) when it fits the window; the question's attention ranks the passages for the evidence.
  A document past the window falls back to the passages that fit.

Either way the raw text is cleaned (engine/answer/postprocess.py), checked against the passages it was given
(engine/answer/support.py), quoted from the document when it is not supported, and the evidence, citations and
highlights are made from the same ranking.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..attention import compaction, scoring, strategies
from ..errors import QuestionError
from ..model import generation, positions
from ..model.prompt import question_ids, stop_texts
from ..reading.documents import DocumentHandle, DocumentState
from ..reading.lazy import LazyReading
from ..retrieval import passages as passage_ops
from ..retrieval import ranking as ranking_ops
from ..settings import AnswerSettings, EngineSettings
from . import evidence as relevance
from . import postprocess, support
from .result import Answer, Citation

FIXED_POSITIONS = ("This model cannot move passages next to the question, so it answered from the document as it "
                   "read it.")
SCORED_KEPT = 8  # questions whose attention over a document is kept (asked again, or answered another way)


@dataclass
class Generated:
    """What the model produced and what it attended to."""

    text: str
    finish: str
    looped: bool
    tokens: int
    first_token_s: float
    decode_s: float
    token_mass: np.ndarray | None  # (layers, L) the question's attention over the document, if it was measured
    answer_mass: np.ndarray  # (L,) the answer's attention over the document (zeros where it was not seen)
    context: list[int]  # passages the answer attended to, best first
    ranking: ranking_ops.Ranking
    attention: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


class Answerer:
    """Answers questions with one loaded model; ``ask`` is the whole pipeline for one question."""

    def __init__(self, loaded, stop_ids: set[int]) -> None:
        self.loaded = loaded
        self.stop_ids = stop_ids
        self._scored: dict[tuple, np.ndarray] = {}  # (document, question tokens) -> its attention, a few kept

    def forget_scores(self) -> None:
        self._scored.clear()

    def _score(self, doc: DocumentHandle, state: DocumentState, q_ids: list[int], should_stop, progress):
        """(layers, L) the question's attention over the document; the same question again costs nothing."""
        key = (doc.sha256, doc.method, tuple(q_ids))
        if key not in self._scored:
            model = self.loaded.model
            if state.cache is not None:
                mass = scoring.over_cache(model, state.cache, state.reading.head_len, state.reading.length, q_ids,
                                          should_stop)
            else:
                report = (lambda done, total: progress("Finding the passages", done, total)) if progress else None
                reading = state.reading
                if isinstance(reading, LazyReading):  # every segment, kept while this state is
                    reading = reading.whole()
                mass = scoring.over_segments(model, reading, q_ids, should_stop, report)
            while len(self._scored) >= SCORED_KEPT:
                self._scored.pop(next(iter(self._scored)))
            self._scored[key] = mass
        return self._scored[key]

    def ask(self, doc: DocumentHandle, state: DocumentState, question: str, engine_settings: EngineSettings,
            limit_tokens: int,
            budget: int, on_text=None, should_stop=None, progress=None,
            started: float | None = None, index=None) -> tuple[Answer, dict]:
        """The answer and its timings; ``budget`` is the most document tokens the window leaves for a context;
        ``started`` is when the question was asked (first-token time counts from it, reading included);
        ``index`` (engine/retrieval/index.py ``DocumentIndex``, optional) gives a long document's word match and
        idf weights without counting its words again (the same figures)."""
        settings = engine_settings.answer
        q_ids = question_ids(self.loaded.tokenizer, doc.layout, question)
        started = started if started is not None else time.perf_counter()
        movable = positions.can_move(self.loaded.model)  # else no passage can be placed: the whole reading
        whole = (settings.context == "document" or not movable) and state.cache is not None
        if whole:
            generated = self._over_document(doc, state, q_ids, question, engine_settings, settings, limit_tokens,
                                            on_text, should_stop, started)
        else:
            focal = settings.focal_tokens if settings.context == "passages" else budget // 2
            generated = self._over_passages(doc, state, q_ids, question, settings, min(focal, budget),
                                            limit_tokens, on_text, should_stop, progress, started, index)
        answer = self._story(doc, question, generated, settings, index)
        if not movable and settings.context == "passages":
            answer.notice = " ".join(filter(None, [answer.notice, FIXED_POSITIONS]))
        return answer, generated.timings

    # ---- the two contexts

    def _ranking(self, doc: DocumentHandle, state: DocumentState, token_mass: np.ndarray | None, question: str,
                 settings: AnswerSettings, lexical: np.ndarray | None = None) -> ranking_ops.Ranking:
        if token_mass is not None:
            token_mass = (token_mass if settings.layers is None else token_mass[settings.layers]).sum(0)
        return ranking_ops.rank(doc.ingested, doc.passages, token_mass, state.reading.segments, question,
                              settings.attention_weight, doc.used_tokens, lexical)

    @staticmethod
    def _lexical(doc: DocumentHandle, question: str, index) -> np.ndarray:
        """(P,) the passages' BM25 for ``question``: from the passage index where the engine gave one (a long
        document: the same figures, without counting its words again), else counted here."""
        lexical = index.lexical(question) if index is not None else None
        if lexical is None or len(lexical) != len(doc.passages):
            lexical = passage_ops.lexical_scores(doc.passages, doc.ingested, question)
        return lexical

    def _over_passages(self, doc, state, q_ids, question, settings, focal, limit_tokens, on_text, should_stop,
                       progress, started, index=None) -> Generated:
        model = self.loaded.model
        scoring_began = time.perf_counter()
        lexical = self._lexical(doc, question, index)
        token_mass = None  # the word match ranks alone unless the attention is asked for or needed
        if ranking_ops.needs_attention(lexical, settings.attention_weight):
            token_mass = self._score(doc, state, q_ids, should_stop, progress)  # a long document: every segment
        scored = time.perf_counter()
        ranking = self._ranking(doc, state, token_mass, question, settings, lexical)
        chosen = passage_ops.select(doc.passages, ranking.score, focal, settings.follow)
        placed = chosen[::-1] if settings.order == "rank" else sorted(chosen)
        token_index = np.concatenate([np.arange(doc.passages.start[p], min(doc.passages.end[p], state.reading.length))
                                      for p in placed])  # a truncated document's last passage is cut where reading ended
        report = (lambda done, total: progress("Reading the document", done, total)) if progress else None
        loading = time.perf_counter()
        reading, local = state.reading.subset(token_index, report, should_stop)  # a long one: only its segments
        loaded_s = time.perf_counter() - loading
        compacted = compaction.compact(model, reading, local)
        run = compaction.PassageRun(reading.head_len, compacted.items)
        limit = min(limit_tokens, self.loaded.window - state.reading.head_len - compacted.items - len(q_ids))
        result = self._generate(compaction.cache_of(model, compacted), q_ids, run, limit,
                                on_text, should_stop, started)
        answer_mass = np.zeros(doc.total_tokens, dtype=np.float32)
        answer_mass[token_index] = run.answer_mass.numpy()
        attention = {"context": "passages", "passages": len(chosen), "attended_tokens": compacted.items,
                     "attended_fraction": round(compacted.items / max(1, doc.total_tokens), 4)}
        generated = Generated(**result, token_mass=token_mass, answer_mass=answer_mass,
                              context=sorted(chosen, key=lambda p: -ranking.score[p]), ranking=ranking,
                              attention=attention)
        generated.timings["score_s"] = round(scored - scoring_began, 3)
        generated.timings["context_load_s"] = round(loaded_s, 3)
        if isinstance(state.reading, LazyReading):
            generated.timings.update(state.reading.stats.to_dict())
        return generated

    def _over_document(self, doc, state, q_ids, question, engine_settings, settings, limit_tokens, on_text,
                       should_stop, started) -> Generated:
        attention_settings = engine_settings.attention
        run = strategies.get(attention_settings.mode).make_run(attention_settings, doc.layout.doc_start,
                                                               state.prefix_len)
        limit = min(limit_tokens, self.loaded.window - state.prefix_len - len(q_ids))
        try:
            result = self._generate(state.cache, q_ids, run, limit, on_text, should_stop, started)
        finally:
            generation.crop_cache(state.cache, state.prefix_len)  # the next question starts from the document
        if run.question_mass:
            token_mass = np.stack([run.question_mass[i].numpy() for i in sorted(run.question_mass)])
        else:  # a strategy that records nothing: one more pass of the question for the ranking
            token_mass = scoring.over_cache(self.loaded.model, state.cache, state.reading.head_len,
                                            state.reading.length, q_ids, should_stop)
        ranking = self._ranking(doc, state, token_mass, question, settings)
        chosen = passage_ops.select(doc.passages, ranking.score, settings.focal_tokens, settings.follow)
        answer_mass = run.answer_mass.numpy() if run.answer_mass is not None else np.zeros(doc.total_tokens)
        attention = {"context": "document", "mode": attention_settings.mode,
                     "attended_fraction": run.attended_fraction()}
        if attention_settings.mode == "dga":
            attention.update(gamma=attention_settings.dga.gamma, group_size=attention_settings.dga.group_size)
        return Generated(**result, token_mass=token_mass, answer_mass=answer_mass,
                         context=sorted(chosen, key=lambda p: -ranking.score[p]), ranking=ranking, attention=attention)

    def _generate(self, cache, q_ids, run, limit, on_text, should_stop, started) -> dict:
        """Question prefill + greedy decode into ``cache``."""
        if limit < 1:
            raise QuestionError(f"The question is too long ({len(q_ids)} tokens) for the space left in the "
                                f"model's window.", "Ask a shorter question.")
        model = self.loaded.model
        stream = generation.TextStream(self.loaded.tokenizer, stop_texts(self.loaded.tokenizer))
        shown = postprocess.StreamFilter()  # the user never sees a repeat or an empty frame, even while streaming
        finish = generation.Finish()
        first_token_s = decode_started = None
        logits = generation.prefill(model, q_ids, cache, run=run, phase="question", should_stop=should_stop)
        for token in generation.decode(model, cache, logits, limit, self.stop_ids, run=run, should_stop=should_stop,
                                       finish=finish):
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
                decode_started = time.perf_counter()
            piece = shown.feed(stream.push(token))
            if piece and on_text:
                on_text(piece)
            if stream.stopped:  # a base model's answer ended (engine/model/prompt.py stop_texts)
                finish.reason = "complete"
                break
        if finish.reason != "stopped" and should_stop and should_stop():
            finish.reason = "stopped"  # asked to stop as the answer ended (or before it began)
        rest = shown.feed(stream.flush()) + shown.flush()
        if rest and on_text and finish.reason != "stopped":
            on_text(rest)
        now = time.perf_counter()
        decode_s = now - decode_started if decode_started else 0.0
        timings = {"first_token_s": round(first_token_s if first_token_s is not None else now - started, 3),
                   "decode_tokens_per_s": round((len(stream.ids) - 1) / decode_s, 2)
                   if len(stream.ids) > 1 and decode_s > 0 else None,
                   "generated_tokens": len(stream.ids)}
        return {"text": stream.text.strip(), "finish": finish.reason, "looped": finish.looped,
                "tokens": len(stream.ids), "first_token_s": timings["first_token_s"], "decode_s": decode_s,
                "timings": timings}

    # ---- one story

    @staticmethod
    def _token_scores(generated: Generated) -> np.ndarray:
        """(L,) per-token relevance kept with the answer: the question's attention where it was measured, else
        the answer's own attention over the passages it read."""
        if generated.token_mass is not None:
            return generated.token_mass.sum(0).astype(np.float32)
        return np.asarray(generated.answer_mass, dtype=np.float32)

    def _story(self, doc: DocumentHandle, question: str, generated: Generated, settings: AnswerSettings,
               index=None) -> Answer:
        ranking: ranking_ops.Ranking = generated.ranking
        passages, document = doc.passages, doc.ingested
        cleaned = postprocess.clean(generated.text, generated.finish, generated.looped)
        context = generated.context
        texts = [passages.text(document, p) for p in context]
        weights = (index.weights(question) if index is not None
                   else passage_ops.question_weights(passages, document, question))
        verdict = support.check(cleaned.text, question, texts, weights) if cleaned.text else support.Verdict(False, [0])
        text, supported, answer_terms = cleaned.text, verdict.supported, verdict.found
        cited = [context[i] for i in verdict.cited] if context else []
        quote_ranges = None
        if not supported and generated.finish != "stopped":  # a stopped answer stays what the user let it be
            quote = postprocess.best_sentence(document, passages, context or ranking.order()[:3], weights)
            if quote is not None:
                where = f"p. {int(passages.page[quote.passage]) + 1}"
                text, supported, answer_terms = support.quoted(quote.text, where, question, weights, settings.quote)
                cited = [quote.passage]
                quote_ranges = [(quote.first_word, quote.end_word)]
        evidence = relevance.evidence(document, ranking, cited, doc.ref())
        where = {(e.words[0], e.words[1]): i for i, e in enumerate(evidence)}
        citations = []
        for p in cited:
            key = (int(passages.first_word[p]), int(passages.end_word[p]))
            if key in where:
                item = evidence[where[key]]
                citations.append(Citation(item.page, item.text, where[key], item.boxes, item.document))
        ranges = quote_ranges or [(int(passages.first_word[p]), int(passages.end_word[p])) for p in cited]
        lights = relevance.highlights(document, ranges, doc.token_word, generated.answer_mass, answer_terms,
                                      question, doc.sha256)
        answer = Answer(question=question.strip(), answer=text, document=doc.info(), model=self.loaded.info(),
                        attention=generated.attention, timings={}, evidence=evidence, cache_hit=False,
                        stopped=generated.finish == "stopped", notice=doc.notice(),
                        token_scores=self._token_scores(generated), citations=citations,
                        supported=bool(supported), highlights=lights, finish=cleaned.finish, generated=generated.text)
        answer.attention["degenerate"] = cleaned.degenerate or generated.looped
        return answer
