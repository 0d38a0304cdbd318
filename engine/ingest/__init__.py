"""Documents in: every format PyMuPDF opens, turned into pages, words with boxes and text with character offsets.

``extract`` builds an ``IngestedDocument`` (text layer first, OCR for scanned pages); ``formats`` opens and
checks files of each format; ``ocr`` and ``ocr_regions`` recognise scans offline; ``report`` says how a
document was read (format, OCR confidence, repairs). No model is needed here.
"""
