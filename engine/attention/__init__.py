"""How the model attends: DocFocus's own attention plugged into transformers, and what runs through it.

``contract`` registers one attention function and defines ``AttentionRun`` (a per-answer custom attention);
``strategies`` is the registry of whole-document attentions (``dga``, ``dense``, plug-ins); ``dga`` is Dynamic
Group Attention at answer time and ``dga_prefill`` at reading time; ``ops`` the shared math; ``compaction``
places chosen passages right after the chat head by RoPE rotation; ``scoring`` records a question's attention.
"""
