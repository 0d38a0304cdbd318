"""DocFocus engine: ingest PDFs, load a local model, answer questions with DGA."""

__version__ = "0.1.0"
