"""``docfocus library add|list|remove`` and ``docfocus ask --library``: the library on the command line."""
from __future__ import annotations

import argparse
import json
import sys

from app.terminal import ProgressBar, add_engine_options, add_model_options, engine_settings, print_answer
from engine.errors import DocFocusError

ITEM_FIELDS = ("id", "path", "sha256", "title", "pages", "tokens", "state", "reason", "done", "total")


def add_library_commands(commands) -> None:
    library = commands.add_parser("library", help="a collection of documents to ask across (add, list, remove)",
                                  description="Documents added to the library are read once (their state kept "
                                              "in the document cache, their passages in an index); "
                                              "`docfocus ask --library QUESTION` then answers from all of them.")
    actions = library.add_subparsers(dest="library_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add files or folders (searched recursively) and read them",
                             description="Add documents and read every queued one (a reading that was "
                                         "interrupted resumes). A changed file is read again.")
    add.add_argument("paths", nargs="+", metavar="FILE_OR_FOLDER")
    add.add_argument("--no-read", action="store_true", help="only queue them (read by the next add or ask)")
    add.add_argument("--json", action="store_true", help="print one JSON object per document")
    add_model_options(add)
    add_engine_options(add, skip=("device",))
    listing = actions.add_parser("list", help="the library's documents: pages, tokens, state")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    remove = actions.add_parser("remove", help="remove a document (by id or path)")
    remove.add_argument("target", metavar="ID_OR_PATH")


def _library_only():
    """An engine for commands that load no model (list, remove)."""
    from engine.api import Engine, EngineSettings

    return Engine(EngineSettings())


def _row(item: dict) -> dict:
    return {key: item.get(key) for key in ITEM_FIELDS}


def _describe(item: dict) -> str:
    state = item["state"]
    if state == "reading" and item["total"]:
        state = f"reading {100 * item['done'] // max(1, item['total'])}%"
    elif state == "failed":
        state = f"failed: {item['reason']}"
    pages = f"{item['pages']} p." if item["pages"] else "-"
    tokens = f"{item['tokens']:,} tok" if item["tokens"] else "-"
    return f"{item['id']:>4}  {state:<10}  {pages:>7}  {tokens:>11}  {item['title'] or ''}  ({item['path']})"


def run_library(args: argparse.Namespace) -> int:
    if args.library_command == "list":
        engine = _library_only()
        engine.library_refresh()
        items = engine.library_documents()
        if args.json:
            print(json.dumps({"documents": [_row(i) for i in items]}, ensure_ascii=False))
        elif not items:
            print("The library is empty: add documents with `docfocus library add FILE_OR_FOLDER`.")
        else:
            for item in items:
                print(_describe(item))
        return 0
    if args.library_command == "remove":
        item = _library_only().library_remove(args.target)
        print(f"Removed {item['title'] or item['path']} ({item['path']}) from the library.")
        return 0
    return _add(args)


def _add(args: argparse.Namespace) -> int:
    from engine.api import Engine

    engine = Engine(engine_settings(args))
    ids = engine.library_add(args.paths)
    engine.library_refresh()
    if not args.json:
        print(f"Queued {len(ids)} document{'s' if len(ids) != 1 else ''}.", file=sys.stderr)
    failed = 0
    if not args.no_read:
        progress = ProgressBar(enabled=sys.stderr.isatty())
        try:
            engine.load(progress)
            while (item := engine.library_read_next(progress)) is not None:
                failed += item["state"] == "failed"
                print(json.dumps(_row(item), ensure_ascii=False) if args.json else _describe(item), flush=True)
        finally:
            progress.close()
    return 1 if failed else 0


def run_ask_library(args: argparse.Namespace, engine, progress) -> int:
    """``docfocus ask --library QUESTION...``: read what is queued, then answer each question from the library."""

    engine.library_refresh()
    engine.load(progress)
    for item in engine.library_read_all(progress):
        if item["state"] == "failed":
            print(f"Note: {item['path']} could not be read: {item['reason']}", file=sys.stderr)
    if not any(item["state"] == "ready" for item in engine.library_documents()):
        raise DocFocusError("The library has no document ready to answer from.",
                            "Add documents with `docfocus library add FILE_OR_FOLDER`.")
    questions = args.questions
    for question in questions:
        answer = engine.ask_library(question, progress=progress)
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            continue
        if len(questions) > 1:
            print(f"Q: {question}")
        print_answer(answer, library=True)
    return 0
