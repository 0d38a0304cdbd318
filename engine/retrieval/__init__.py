"""Finding the passages a question needs, without the model's reading of the document.

``passages`` cuts a document into ~64-token passages and scores them with BM25; ``terms`` is how words are
seen (content terms, stems, sentences); ``index`` keeps every passage's terms in SQLite so a question is
ranked across one document or a whole library; ``ranking`` turns the scores into one ranking per question.
"""
