"""The passage index: what a question needs to find a passage in any read document, without its state.

For every passage of every indexed document (engine/retrieval/passages.py cuts them: ~64 tokens, whole words, one
page) the index keeps, in ``library.sqlite``: its page, word range and token range, its length in words, and
how often each term key (terms and their stems, engine/retrieval/terms.py) occurs in it. A question is scored with BM25
over all passages in its scope (one document or the whole library): idf and the mean passage length are taken
over that scope, by the same function as a single document's word match (``passages.bm25``), so a one-document
scope ranks exactly as ``passages.lexical_scores`` does.

Passages depend on the tokenizer (they are cut by token counts), so a document is indexed per tokenizer
(``tokenizer``: the loaded model's id). The index is small (tens of bytes per token, against tens of KB per
token of key/value state) and is never evicted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from ..ingest.extract import IngestedDocument
from . import passages as passage_ops
from .passages import Passages


@dataclass
class ScopePassages:
    """The passages of a scope (several documents), in (document, number) order, with their BM25 score."""

    sha256: np.ndarray  # (P,) object: the document of each passage
    number: np.ndarray  # (P,) the passage's number in its document
    page: np.ndarray  # (P,) 0-based page
    first_word: np.ndarray
    end_word: np.ndarray
    start: np.ndarray  # token range in its document
    end: np.ndarray
    lexical: np.ndarray  # (P,) BM25 of the question

    def __len__(self) -> int:
        return len(self.number)

    def as_passages(self) -> Passages:
        """A ``Passages`` view for ``passages.select``: pages made unique per document, so a passage never
        brings another document's passage along as "the passage after it"."""
        _, doc = np.unique(self.sha256, return_inverse=True)
        return Passages(self.first_word, self.end_word, self.start, self.end, doc.astype(np.int64) * 1_000_000 +
                        self.page)


class PassageIndex:
    """BM25 postings of read documents' passages in the library database (tables ``index_*``)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        with db.conn:
            db.execute("CREATE TABLE IF NOT EXISTS index_documents (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                       "sha256 TEXT, tokenizer TEXT, passages INTEGER, tokens INTEGER, created FLOAT, "
                       "UNIQUE(sha256, tokenizer))")
            db.execute("CREATE TABLE IF NOT EXISTS index_passages (doc INTEGER, number INTEGER, page INTEGER, "
                       "first_word INTEGER, end_word INTEGER, start INTEGER, end INTEGER, "
                       "PRIMARY KEY (doc, number)) WITHOUT ROWID")
            db.execute("CREATE TABLE IF NOT EXISTS index_postings (term TEXT, doc INTEGER, number INTEGER, "
                       "tf INTEGER, PRIMARY KEY (term, doc, number)) WITHOUT ROWID")

    # -- building

    def doc_id(self, sha256: str, tokenizer: str) -> int | None:
        row = self.db.execute("SELECT id FROM index_documents WHERE sha256 = ? AND tokenizer = ?",
                              [sha256, tokenizer]).fetchone()
        return None if row is None else int(row[0])

    def add(self, document: IngestedDocument, passages: Passages, tokenizer: str, tokens: int) -> int:
        """Index ``document``'s passages (replacing an older index of it); returns its index id."""
        counts = passages.term_counts(document)
        with self.db.conn:
            self._delete(self.doc_id(document.sha256, tokenizer))
            doc = self.db.execute("INSERT INTO index_documents (sha256, tokenizer, passages, tokens, created) "
                                  "VALUES (?, ?, ?, ?, ?)", [document.sha256, tokenizer, len(passages), tokens,
                                                             time.time()]).lastrowid
            self.db.conn.executemany(
                "INSERT INTO index_passages VALUES (?, ?, ?, ?, ?, ?, ?)",
                ((doc, n, int(passages.page[n]), int(passages.first_word[n]), int(passages.end_word[n]),
                  int(passages.start[n]), int(passages.end[n])) for n in range(len(passages))))
            self.db.conn.executemany("INSERT INTO index_postings VALUES (?, ?, ?, ?)",
                                     ((term, doc, n, tf) for n, counter in enumerate(counts)
                                      for term, tf in counter.items()))
        return int(doc)

    def remove(self, sha256: str) -> int:
        """Forget every index of a document; returns how many (one per tokenizer)."""
        ids = [row[0] for row in self.db.execute("SELECT id FROM index_documents WHERE sha256 = ?", [sha256])]
        with self.db.conn:
            for doc in ids:
                self._delete(doc)
        return len(ids)

    def _delete(self, doc: int | None) -> None:
        if doc is None:
            return
        self.db.execute("DELETE FROM index_postings WHERE doc = ?", [doc])  # (term, doc, number): a full scan,
        self.db.execute("DELETE FROM index_passages WHERE doc = ?", [doc])  # but removing is rare
        self.db.execute("DELETE FROM index_documents WHERE id = ?", [doc])

    # -- asking

    def documents(self, tokenizer: str) -> dict[str, int]:
        """sha256 -> index id of the documents indexed for ``tokenizer``."""
        return {sha: int(doc) for doc, sha in self.db.execute(
            "SELECT id, sha256 FROM index_documents WHERE tokenizer = ?", [tokenizer])}

    def search(self, question: str, docs: list[int]) -> ScopePassages:
        """Every passage of the documents ``docs`` (index ids) with the question's BM25 over that scope."""
        docs = sorted(set(int(d) for d in docs))
        marks = ", ".join("?" * len(docs))
        rows = np.array(self.db.execute(
            f"SELECT doc, number, page, first_word, end_word, start, end FROM index_passages WHERE doc IN ({marks}) "
            f"ORDER BY doc, number", docs).fetchall() or np.zeros((0, 7)), dtype=np.int64).reshape(-1, 7)
        shas = dict(self.db.execute(f"SELECT id, sha256 FROM index_documents WHERE id IN ({marks})", docs).fetchall())
        doc_of, number = rows[:, 0], rows[:, 1]
        offset = {}  # index id -> row of its passage 0 (rows are in (doc, number) order, numbers 0..P_d-1)
        for row, doc in enumerate(doc_of.tolist()):
            offset.setdefault(doc, row)
        tfs = []
        for term in passage_ops.question_terms(question):
            tf = np.zeros(len(rows))
            for doc, n, count in self.db.execute(f"SELECT doc, number, tf FROM index_postings WHERE term = ? AND "
                                                 f"doc IN ({marks})", [term, *docs]):
                tf[offset[doc] + n] = count
            tfs.append(tf)
        lexical = passage_ops.bm25(tfs, rows[:, 4] - rows[:, 3])
        return ScopePassages(np.array([shas[d] for d in doc_of.tolist()], dtype=object), number, rows[:, 2],
                             rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 6], lexical)

    def weights(self, question: str, docs: list[int]) -> dict[str, float]:
        """The question's term stems found in the scope, each weighted by its idf over the scope's passages (as
        ``passages.question_weights`` over one document)."""
        docs = sorted(set(int(d) for d in docs))
        marks = ", ".join("?" * len(docs))
        total = self.db.execute(f"SELECT COALESCE(SUM(passages), 0) FROM index_documents WHERE id IN ({marks})",
                                docs).fetchone()[0]
        weights = {}
        for term in passage_ops.question_terms(question):
            df = self.db.execute(f"SELECT COUNT(*) FROM index_postings WHERE term = ? AND doc IN ({marks})",
                                 [term, *docs]).fetchone()[0]
            if df:
                weights[term] = passage_ops.idf(total, df)
        return weights


class DocumentIndex:
    """One document's scope of the index, as the answerer asks it: BM25 per passage and the idf weights."""

    def __init__(self, index: PassageIndex, doc: int) -> None:
        self.index, self.doc = index, doc

    def lexical(self, question: str) -> np.ndarray:
        """(P,) in passage order: equal to ``passages.lexical_scores`` of the document."""
        return self.index.search(question, [self.doc]).lexical

    def weights(self, question: str) -> dict[str, float]:
        return self.index.weights(question, [self.doc])
