"""``docfocus cache list|clear`` and ``docfocus history PDF``: no model is loaded for these."""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from engine.errors import DocFocusError, PdfError
from engine.store.dbfile import hint_for


def _pdf_sha256(pdf: str) -> str:
    from engine.ingest.extract import file_sha256

    path = Path(pdf)
    if not path.is_file():
        raise PdfError(f"File not found: {path}")
    return file_sha256(path)


def _state_cache():
    from engine import paths
    from engine.store.state_cache import StateCache

    return StateCache(paths.library_path().with_name("states.sqlite"))


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def _size(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"


def _print_notes(notices: list[str]) -> None:
    for notice in notices:  # on stderr: stdout stays the command's output (--json)
        print(f"Note: {notice}", file=sys.stderr)


def _require_usable(cache) -> None:
    """A cache that cannot be used here (read-only folder or file) is an error for these commands (the error
    says it all: the cache's own notice, written for answers, is not printed)."""
    if cache.unavailable is not None:
        raise DocFocusError(f"DocFocus cannot use its document cache {cache.path} ({cache.unavailable}). "
                            f"Nothing was changed.", hint_for(cache.unavailable))


def run_cache(args: argparse.Namespace) -> int:
    cache = _state_cache()
    if args.cache_command == "clear":
        sha = _pdf_sha256(args.document) if args.document else None
        count, size = cache.clear(sha)
        _require_usable(cache)
        _print_notes(cache.take_notices())
        print(f"Removed {count} stored state{'s' if count != 1 else ''} ({_size(size)}). "
              f"Chat history is kept.")
        return 0
    entries = cache.entries()
    quarantined = cache.quarantined()
    _require_usable(cache)
    _print_notes(cache.take_notices())
    if args.json:
        print(json.dumps({"path": str(cache.path), "cap_bytes": cache.cap_bytes, "used_bytes": cache.used_bytes(),
                          "states": entries, "quarantined": quarantined}))
        return 0
    print(f"{'Document':32} {'Model':24} {'Format':6} {'Tokens':>7} {'Size':>10}  Last used")
    for entry in entries:
        title = (entry["title"] or entry["sha256"][:12])[:32]
        print(f"{title:32} {entry['model_id'][:24]:24} {entry['storage_format']:6} {entry['prefix_tokens']:>7,} "
              f"{_size(entry['stored_bytes']):>10}  {_when(entry['last_used'])}")
    used = sum(entry["stored_bytes"] for entry in entries)
    print(f"{len(entries)} states, {_size(used)} in {cache.path}")
    if quarantined:
        print(f"{len(quarantined)} damaged states set aside ({_size(sum(q['stored_bytes'] for q in quarantined))}); "
              f"'docfocus cache clear' removes them.")
    return 0


def run_history(args: argparse.Namespace) -> int:
    from engine.library.documents import Library
    from engine.store.history import History, damaged_notice

    sha = _pdf_sha256(args.pdf)
    library = Library()  # one that cannot be written raises a DocFocusError: a message and exit status 2
    _print_notes(library.take_notices())
    history = History(library.db)
    if args.clear:
        print(f"Removed {history.clear(sha)} answers from the history of {Path(args.pdf).name}.")
        return 0
    entries = history.entries(sha)
    _print_notes(list(filter(None, [damaged_notice(entries)])))
    if args.json:
        for entry in entries:
            scores = entry.pop("token_scores")
            entry["token_scores"] = None if scores is None else [round(float(x), 4) for x in scores]
            print(json.dumps(entry, ensure_ascii=False))
        return 0
    if not entries:
        print(f"No questions asked about {Path(args.pdf).name} yet.")
        return 0
    for entry in entries:
        mode = entry["attention"].get("mode", "?")
        print(f"[{_when(entry['created'])}] ({entry['model'].get('id', '?')}, {mode})")
        print(f"Q: {entry['question']}")
        print(f"A: {entry['answer']}")
        for item in entry["evidence"][:3]:
            print(f"   [p. {item['page']}] {' '.join(item['text'].split())[:100]}")
        print()
    return 0
