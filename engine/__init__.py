"""DocFocus engine: read documents, find the passages a question needs, answer from them with a local model.

The layout is the design (each subpackage's docstring says more):

- ``api``        the one front door (``Engine``): the command line and the window use nothing else for work.
- ``settings``   what the user can choose, nested by concern; ``options`` the vocabulary of choices and limits.
- ``ingest``     documents in: formats, text layers, OCR of scans, reports of how a document was read.
- ``model``      the language model: loading, the prompt layout, prefill and decode loops.
- ``reading``    the model's reading of a document: segments, positions, and per-segment lazy state.
- ``retrieval``  finding passages: the passage cut, the word index, the ranking.
- ``attention``  how the model attends: the contract with transformers, DGA, compaction, scoring.
- ``answer``     from a ranking to an Answer: generation, support verdict, quotes, evidence, highlights.
- ``store``      what is kept on disk: the state cache, its codec and database file, the chat history.
- ``library``    many documents: the documents database, the reading queue, library questions.

Nothing here imports the app or Qt.
"""

__version__ = "0.1.0"
