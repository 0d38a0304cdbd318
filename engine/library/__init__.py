"""Many documents: the documents database with pages and words (``documents``, class ``Library``), the
reading queue of documents added to the library (``queue``), the Engine's library methods (``service``) and
answering a question across the library (``answer``).
"""
