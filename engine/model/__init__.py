"""The language model: finding, converting and loading it (``loading``), the prompt layout around a document
and a question (``prompt``), and the prefill and greedy decode loops over a transformers cache (``generation``).
"""
