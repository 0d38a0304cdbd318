"""The one answer pipeline: from a ranking of passages (one document or a library) to an ``Answer``.

Two contexts (``AnswerSettings.context``):

- ``passages`` (default): the best passages of the ranking, up to ``focal_tokens`` tokens, from whichever
  documents hold them, are read or loaded (only their segments: engine/reading/lazy.py), placed right after the
  chat head by RoPE re-positioning (engine/answer/context.py) and the answer attends to them alone, exactly.
  A small model answers far better from a short relevant context than from a whole document.
- ``document``: the answer attends to the whole document (it must fit the model's window) with the chosen
  attention strategy (DGA, dense, ...: engine/attention/strategies.py); the ranking still orders the evidence.

Either way the story (engine/answer/story.py) checks the answer against the passages it read and builds the
evidence, citations and highlights from the same ranking.
"""
from __future__ import annotations

import numpy as np

from ..attention import scoring, strategies
from ..model import generation
from ..model.prompt import question_ids
from ..retrieval import passages as passage_ops
from ..settings import AnswerSettings, AttentionSettings
from . import context as placing
from . import focus, story
from .checks import ModelChecks
from .generate import generate
from .result import Answer


class Answerer:
    """Answers questions with one loaded model (``loaded``: engine/model/loading.py ``LoadedModel``)."""

    def __init__(self, loaded, stop_ids: set[int]) -> None:
        self.loaded = loaded
        self.stop_ids = stop_ids

    def over_passages(self, question: str, ranking, readings: dict, settings: AnswerSettings, facts: story.Facts,
                      budget: int, on_text=None, should_stop=None, progress=None) -> Answer:
        """Answer from the best passages of ``ranking`` (``readings``: sha256 -> each document's reading);
        ``budget`` is the most document tokens the window leaves for a context."""
        candidates = ranking.candidates
        report = (lambda done, total: progress("Reading the parts the question needs", done, total)) \
            if progress else None
        layout = candidates.handle(int(np.argmax(ranking.score))).layout
        q_ids = question_ids(self.loaded.tokenizer, layout, question)
        if settings.attention_weight > 0:  # the model's focus over a shortlist (engine/answer/focus.py)
            ranking, focus_stats = focus.refocus(self.loaded.model, ranking, readings, q_ids,
                                                 settings.shortlist_tokens, settings.attention_weight, report,
                                                 should_stop)
            facts.timings.update(focus_stats)
        chosen = passage_ops.select(candidates.as_passages(), ranking.score, min(settings.focal_tokens, budget),
                                    settings.follow)
        placed = chosen[::-1] if settings.order == "rank" else sorted(chosen)
        context = placing.assemble(self.loaded.model, candidates, placed, readings, report, should_stop)
        limit = min(settings.max_new_tokens, self.loaded.window - context.head_len - context.items - len(q_ids))
        generated = generate(self.loaded, self.stop_ids, context.cache, q_ids, context.run, limit, on_text,
                             should_stop, facts.started, progress, question)
        scope_tokens = int(candidates.tokens.sum())
        facts.attention = {"context": "passages", "mode": "exact",
                           "passages": len(chosen), "attended_tokens": context.items,
                           "attended_fraction": round(context.items / max(1, scope_tokens), 6),
                           "documents_in_context": len({int(candidates.doc[r]) for r in chosen})}
        facts.timings.update(context.stats, state_from=_source(context.stats))
        facts.cache_hit = context.stats["segments_read"] == 0
        for reading in readings.values():
            facts.notices += reading.take_notices() if hasattr(reading, "take_notices") else []
        masses = context.answer_mass(candidates)
        scores = masses.get(candidates.shas[0]) if len(candidates.shas) == 1 else None
        best_first = sorted(chosen, key=lambda row: -ranking.score[row])
        return story.tell(question, ranking, best_first, generated, masses, facts, settings.quote, scores,
                          ModelChecks(self.loaded, layout.head_ids, q_ids))

    def over_document(self, question: str, ranking, state, attention: AttentionSettings, settings: AnswerSettings,
                      facts: story.Facts, on_text=None, should_stop=None, progress=None) -> Answer:
        """Answer with the whole document in the window (``state``: a ``DocumentState`` with its dense cache,
        cropped back to the document afterwards)."""
        handle = ranking.candidates.handle_of(0)
        q_ids = question_ids(self.loaded.tokenizer, handle.layout, question)
        run = strategies.get(attention.mode).make_run(attention, handle.layout.doc_start, state.prefix_len)
        limit = min(settings.max_new_tokens, self.loaded.window - state.prefix_len - len(q_ids))
        try:
            generated = generate(self.loaded, self.stop_ids, state.cache, q_ids, run, limit, on_text, should_stop,
                                 facts.started, progress, question)
        finally:
            generation.crop_cache(state.cache, state.prefix_len)  # the next question starts from the document
        chosen = passage_ops.select(ranking.candidates.as_passages(), ranking.score, settings.focal_tokens,
                                    settings.follow)
        facts.attention = {"context": "document", "mode": attention.mode,
                           "attended_fraction": run.attended_fraction()}
        if attention.mode == "dga":
            facts.attention.update(gamma=attention.dga.gamma, group_size=attention.dga.group_size)
        answer_mass = run.answer_mass.numpy() if run.answer_mass is not None else np.zeros(handle.total_tokens)
        best_first = sorted(chosen, key=lambda row: -ranking.score[row])
        return story.tell(question, ranking, best_first, generated, {handle.sha256: answer_mass}, facts,
                          settings.quote, self._question_scores(run, state, q_ids, should_stop),
                          ModelChecks(self.loaded, handle.layout.head_ids, q_ids))

    def _question_scores(self, run, state, q_ids, should_stop) -> np.ndarray:
        """(L,) the question's attention over the document, kept with the answer: recorded by the run, or one more
        pass of the question over the cache for a strategy that records nothing."""
        if run.question_mass:
            return np.stack([run.question_mass[i].numpy() for i in sorted(run.question_mass)]).sum(0)
        reading = state.reading
        mass = scoring.over_cache(self.loaded.model, state.cache, reading.head_len, reading.length, q_ids,
                                  should_stop)
        return mass.sum(0).astype(np.float32)


def _source(stats: dict) -> str:
    """Where the answer's context came from: "prefill" (a segment was read now), "disk" (stored segments were
    loaded) or "memory" (all were in memory already)."""
    if stats["segments_read"]:
        return "prefill"
    return "disk" if stats["segments_loaded"] else "memory"
