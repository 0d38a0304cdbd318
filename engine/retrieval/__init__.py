"""Finding the passages a question needs, without the model's reading of the document.

``passages`` cuts a document into ~64-token passages and scores them with BM25; ``terms`` is how words are
seen (content terms, stems, sentences); ``index`` keeps every passage's terms in SQLite so a question is
ranked across one document or a whole library; ``ranking`` turns the scores into one ranking per question;
``meaning`` re-ranks the best passages with a small sentence embedder and ``likelihood`` has the language model
check the very best (how likely the question is after each: one batched pass over a few passages, never the
document's reading).
"""
