"""The model's reading of a document: keys and values per token, and the position each was read at.

``segments`` cuts a document into segments read apart (after the chat head and some overlap) and moves RoPE
keys between positions; ``lazy`` keeps a reading per segment, loaded or read only where a question needs it;
``documents`` holds an opened document (``DocumentHandle``) and its reading (``DocumentState``).
"""
