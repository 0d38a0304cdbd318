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

import sqlite3
import time
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from ..ingest.extract import IngestedDocument
from . import passages as passage_ops
from .passages import Passages

TERMS_VERSION = 2  # how term keys are made (engine/retrieval/terms.py): 2 adds the parts of compounds


def index_key(model_id: str) -> str:
    """What a document's index is kept under: the passages depend on the tokenizer (the model), the postings on
    how terms are made."""
    return f"{model_id}|terms={TERMS_VERSION}"


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


class TokenizerIndex:
    """The index as the documents cut for one tokenizer see it (what a ranking asks: ids, BM25, weights)."""

    def __init__(self, index: PassageIndex, tokenizer: str) -> None:
        self.index, self.tokenizer = index, tokenizer

    def doc_id(self, sha256: str) -> int | None:
        return self.index.doc_id(sha256, self.tokenizer)

    def search(self, question: str, docs: list[int]) -> ScopePassages:
        return self.index.search(question, docs)

    def weights(self, question: str, docs: list[int]) -> dict[str, float]:
        return self.index.weights(question, docs)


class PassageVectors:
    """Passages' meaning vectors (engine/retrieval/meaning.py), by document, index key and passage number: kept in
    memory, and in the library database (table ``index_vectors``) for documents that may be kept on disk
    (``keeps(sha256)``: not one that needs a password)."""

    def __init__(self, db: sqlite_utils.Database, key: str, keeps=lambda sha256: True) -> None:
        self.db, self.key, self.keeps = db, key, keeps
        self.memory: dict[tuple[str, int], np.ndarray] = {}
        try:
            with db.conn:
                db.execute("CREATE TABLE IF NOT EXISTS index_vectors (sha256 TEXT, key TEXT, number INTEGER, "
                           "vector BLOB, PRIMARY KEY (sha256, key, number)) WITHOUT ROWID")
        except sqlite3.Error:
            self.db = None  # vectors are an accelerator: kept in memory only

    def get(self, pairs: list[tuple[str, int]], texts, embedder) -> np.ndarray:
        """(n, D) vectors of these (sha256, passage number) pairs; ``texts()`` gives the passages' texts for the
        ones computed now."""
        missing = [pair for pair in pairs if pair not in self.memory]
        if missing and self.db is not None:
            self._load(missing)
            missing = [pair for pair in pairs if pair not in self.memory]
        if missing:
            wanted = set(missing)
            fresh = embedder.embed([text for pair, text in zip(pairs, texts()) if pair in wanted])
            self.memory.update(zip(missing, fresh))
            self._save([(pair, self.memory[pair]) for pair in missing if self.keeps(pair[0])])
        return np.stack([self.memory[pair] for pair in pairs])

    def _load(self, pairs: list[tuple[str, int]]) -> None:
        try:
            for sha256, number in pairs:
                row = self.db.execute("SELECT vector FROM index_vectors WHERE sha256 = ? AND key = ? AND number = ?",
                                      [sha256, self.key, number]).fetchone()
                if row is not None:
                    self.memory[(sha256, number)] = np.frombuffer(row[0], dtype=np.float16).astype(np.float32)
        except sqlite3.Error:
            pass  # computed again instead

    def _save(self, items) -> None:
        if self.db is None or not items:
            return
        try:
            with self.db.conn:
                self.db.conn.executemany("INSERT OR REPLACE INTO index_vectors VALUES (?, ?, ?, ?)",
                                         [(sha, self.key, number, vector.astype(np.float16).tobytes())
                                          for (sha, number), vector in items])
        except sqlite3.Error:
            pass  # kept in memory; the next process computes them again
