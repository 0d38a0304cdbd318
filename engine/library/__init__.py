"""Many documents: the documents database with pages and words (``documents``, class ``Library``), the
reading queue of documents added to the library (``queue``), and the Engine's library methods, asking across
the library included (``service``: the same answer pipeline as one document's, over the whole index).
"""
