"""What DocFocus keeps on disk besides the library: the state cache of document readings (``state_cache`` with
its chunk ``codec`` and ``state_db`` file), the chat history (``history``) and the handling of SQLite files
that are damaged or not writable (``dbfile``). States are disposable; the history is user data.
"""
