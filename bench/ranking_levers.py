"""The ranking levers bench/ranking.py compares, each a way to score one document's passages for a question.

Only "words", "meaning", "model check" and "focus" are the product's own code paths (engine/retrieval,
engine/answer/focus.py; "model check" is the shipped ranking: words, meaning, then the model's check);
the others are built here to be measured, and were not shipped (see docs/benchmarks.md for why).
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

from engine.answer import focus
from engine.model.prompt import question_ids
from engine.retrieval import meaning, ranking
from engine.retrieval import passages as passage_ops
from engine.retrieval import terms as words_text

LEVERS = ("whole terms", "words", "headings", "meaning", "meaning over every passage", "rewrite (HyDE)",
          "words + headings + meaning", "model check", "focus")
HYDE_PROMPT = "Write one sentence from a software manual that answers this question.\nQuestion: {question}"


def rrf(*scores: np.ndarray, k: int = 60) -> np.ndarray:
    total = np.zeros(len(scores[0]))
    for score in scores:
        ranks = np.empty(len(score))
        ranks[np.argsort(-score, kind="stable")] = np.arange(len(score))
        total += 1.0 / (k + ranks)
    return total


class Levers:
    """Every lever over one opened document (``doc``) of ``engine``."""

    def __init__(self, engine, doc) -> None:
        self.engine, self.doc = engine, doc
        self.candidates = ranking.Candidates.of_document(doc)
        self._whole_counts = None
        self._headings = None
        self._vectors = None

    def score(self, name: str, question: str) -> tuple[ranking.Candidates, np.ndarray]:
        method = {"whole terms": self.whole_terms, "words": self.words, "headings": self.headings,
                  "meaning": self.meaning, "meaning over every passage": self.meaning_everywhere,
                  "rewrite (HyDE)": self.rewrite, "words + headings + meaning": self.all_cheap,
                  "model check": self.model_check, "focus": self.focus}[name]
        return self.candidates, method(question)

    # -- the product's own

    def _ranked(self, question: str, with_meaning: bool, with_check: bool = False):
        kept = self.engine.settings
        self.engine.settings = kept.changed(answer={"meaning": with_meaning, "model_check": with_check})
        try:
            return self.engine.rank(self.doc, question)
        finally:
            self.engine.settings = kept

    def words(self, question: str) -> np.ndarray:
        return self._ranked(question, False).score

    def meaning(self, question: str) -> np.ndarray:
        return self._ranked(question, True).score

    def model_check(self, question: str) -> np.ndarray:
        return self._ranked(question, True, True).score

    def focus(self, question: str) -> np.ndarray:
        ranked = self._ranked(question, True, True)
        q_ids = question_ids(self.engine.loaded.tokenizer, self.doc.layout, question)
        focused, _ = focus.refocus(self.engine.loaded.model, ranked, {self.doc.sha256: self.engine.readings.lazy(
            self.doc)}, q_ids, 1536, 1.0)
        return focused.score

    # -- built here to be measured

    def whole_terms(self, question: str) -> np.ndarray:
        """BM25 with whole terms only (no parts of compounds): the word match before this round."""
        if self._whole_counts is None:
            document = self.doc.ingested
            self._whole_counts = [Counter(key for word in document.words[int(a):int(b)]
                                          for term in words_text.terms(word.text)
                                          for key in (term, words_text.stem(term)))
                                  for a, b in zip(self.doc.passages.first_word, self.doc.passages.end_word)]
        wanted = list(dict.fromkeys(words_text.stem(t) for t in words_text.terms(question)))
        frequencies = [np.array([c.get(t, 0) for c in self._whole_counts], dtype=np.float64) for t in wanted]
        return passage_ops.bm25(frequencies, self.doc.passages.end_word - self.doc.passages.first_word)

    def headings(self, question: str) -> np.ndarray:
        """The word match plus the z-score of the share of the question's terms in the heading path above each
        passage (the PDF's outline, each entry found on its page)."""
        if self._headings is None:
            self._headings = [words_text.term_keys(path) for path in heading_paths(self.doc)]
        weights = passage_ops.question_weights(self.doc.passages, self.doc.ingested, question)
        total = sum(weights.values()) or 1.0
        cover = np.array([sum(w for t, w in weights.items() if t in keys) / total for keys in self._headings])
        return passage_ops.zscore(self.words(question)) + passage_ops.zscore(cover)

    def _all_vectors(self) -> np.ndarray:
        if self._vectors is None:
            embedder = self.engine.embedder()
            texts = [self.doc.passages.text(self.doc.ingested, n) for n in range(len(self.doc.passages))]
            self._vectors = np.concatenate([embedder.embed(texts[i:i + 64]) for i in range(0, len(texts), 64)])
        return self._vectors

    def meaning_everywhere(self, question: str) -> np.ndarray:
        embedder = self.engine.embedder()
        return rrf(self.words(question), self._all_vectors() @ embedder.embed([question])[0])

    def rewrite(self, question: str) -> np.ndarray:
        """HyDE: the words of the question and of the model's own one-sentence answer (no document)."""
        written = hypothetical_answer(self.engine, question)
        return passage_ops.lexical_scores(self.doc.passages, self.doc.ingested, f"{question} {written}")

    def all_cheap(self, question: str) -> np.ndarray:
        """Headings beside the words, then the meaning over that ranking's shortlist."""
        base = self._ranked(question, True)  # (loads the engine's embedder and its vectors)
        combined = ranking.Ranking(base.candidates, self.headings(question), {}, ["words", "headings"], base.weights)
        return meaning.rerank(combined, question, self.engine.embedder(), self.engine.passage_vectors).score


def hypothetical_answer(engine, question: str, tokens: int = 32) -> str:
    from engine.model import generation

    loaded = engine.load()
    tokenizer = loaded.tokenizer
    messages = [{"role": "user", "content": HYDE_PROMPT.format(question=question)}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = ids["input_ids"] if isinstance(ids, dict) else ids
    cache = generation.new_cache(loaded.model.config)
    logits = generation.prefill(loaded.model, ids, cache)
    stream = generation.TextStream(tokenizer)
    for token in generation.decode(loaded.model, cache, logits, tokens, generation.stop_token_ids(tokenizer,
                                                                                                  loaded.model)):
        stream.push(token)
    return stream.text


def heading_paths(doc) -> list[str]:
    """Per passage, the outline's titles above it (chapter, section, ...), from the PDF's outline."""
    import pymupdf

    with pymupdf.open(doc.ingested.path) as pdf:
        toc = pdf.get_toc()
    words = doc.ingested.words
    first_of_page: dict[int, int] = {}
    for index, word in enumerate(words):
        first_of_page.setdefault(word.page, index)
    starts = sorted((_locate(words, first_of_page, level, title, page - 1), level, title)
                    for level, title, page in toc if page - 1 in first_of_page)
    paths, stack, k = [], {}, 0
    for first, end in zip(doc.passages.first_word, doc.passages.end_word):
        while k < len(starts) and starts[k][0] < int(end):
            _, level, title = starts[k]
            stack = {lv: t for lv, t in stack.items() if lv < level}
            stack[level] = title
            k += 1
        paths.append(" ".join(stack[lv] for lv in sorted(stack)))
    return paths


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _locate(words, first_of_page: dict[int, int], level: int, title: str, page: int) -> int:
    """The first word of ``title`` on its page (after a section number), else the page's first word."""
    start = first_of_page[page]
    end = first_of_page.get(page + 1, len(words))
    target = _norm(title)
    for index in range(start, end):
        joined = ""
        for other in range(index, min(end, index + 20)):
            joined += _norm(words[other].text)
            if joined.endswith(target) and re.fullmatch(r"[0-9a-z]?[0-9]*", joined[:len(joined) - len(target)]):
                return index
            if len(joined) >= len(target) + 6:
                break
    return start
