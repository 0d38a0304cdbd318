"""The ``docfocus`` command line: ``ask`` (and, later, cache and history commands).

It uses the same engine API as the desktop app and never imports Qt.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from app.cache_commands import run_cache, run_history
from app.library_commands import add_library_commands, run_ask_library, run_library
from app.terminal import ProgressBar, add_engine_options, add_model_options, engine_settings, print_answer
from engine import __version__
from engine.errors import DocFocusError
from engine.model.prompt import check_question


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docfocus",
        description="Read long PDFs with a local language model. With no command (or a PDF path) "
                    "DocFocus opens its window; the commands below work in a terminal.")
    parser.add_argument("--version", action="version", version=f"DocFocus {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check this install headless (bundled model, a DGA answer, the cache, the window) "
                             "and exit 0 if it works")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    ask = commands.add_parser("ask", help="answer questions about a PDF (or EPUB, XPS, FB2, MOBI, CBZ, text, scan)",
                              description="Answer one or more questions about a document, reading it once. "
                                          "PDF, EPUB, XPS, FB2, MOBI, CBZ, plain text and scanned images (PNG, "
                                          "JPEG, TIFF); pages without a text layer are recognised (OCR) once and "
                                          "kept in the library.")
    ask.add_argument("pdf", metavar="DOCUMENT", help="the document file (with --library: the first question)")
    ask.add_argument("questions", nargs="*", metavar="QUESTION", help="one or more questions")
    ask.add_argument("--library", action="store_true",
                     help="answer from every document of the library (docfocus library add) instead of one file")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question, one per line")
    add_model_options(ask)
    ask.add_argument("--password", help="password of an encrypted PDF")
    add_engine_options(ask, skip=("device",))
    ask.add_argument("--no-cache", action="store_true",
                     help="neither use nor save the document state cache (the chat history is still kept)")
    add_cache_commands(commands)
    add_library_commands(commands)
    return parser


def add_cache_commands(commands) -> None:
    cache = commands.add_parser("cache", help="list or clear stored document states",
                                description="Stored document states let DocFocus answer without reading a "
                                            "document again. They are a cache: clearing them never touches "
                                            "the chat history.")
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="stored states: document, model, tokens, size, last used")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    clear = actions.add_parser("clear", help="remove stored states (all, or one document's)")
    clear.add_argument("--document", metavar="PDF", help="only this PDF's states")
    history = commands.add_parser("history", help="print the questions and answers about a PDF",
                                  description="Print the chat history of a PDF (oldest first).")
    history.add_argument("pdf", help="the PDF file")
    history.add_argument("--json", action="store_true", help="print one JSON object per answer, one per line")
    history.add_argument("--clear", action="store_true", help="delete this PDF's history instead")


def run_ask(args: argparse.Namespace) -> int:
    from engine.api import Engine

    if args.library:
        args.questions = [args.pdf, *args.questions]
    elif not args.questions:
        raise DocFocusError("No question was given.", "docfocus ask DOCUMENT QUESTION... (or ask --library QUESTION...)")
    for question in args.questions:  # fail fast on bad options or an empty or too long question before any work
        check_question(question)
    engine = Engine(engine_settings(args))
    progress = ProgressBar(enabled=sys.stderr.isatty() or not args.json)
    if args.library:
        try:
            return run_ask_library(args, engine, progress)
        finally:
            progress.close()
    try:
        ingested = engine.ingest(args.pdf, args.password, progress=progress)  # a bad file fails before the model loads
        engine.load(progress)
        doc = engine.open_document(ingested)
        if doc.notice():
            print(f"Note: {doc.notice()}", file=sys.stderr)
        for question in args.questions:
            if args.json:
                answer = engine.ask(doc, question, progress=progress)
                print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
            else:
                if len(args.questions) > 1:
                    print(f"Q: {question}")
                answer = engine.ask(doc, question, progress=progress)
                print_answer(answer)
            for notice in answer.notices:  # a stored reading set aside, not saved...: said once
                if notice != doc.notice():
                    print(f"Note: {notice}", file=sys.stderr)
    finally:
        progress.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from app.selftest import run as self_test

        return self_test(verbose=os.environ.get("DOCFOCUS_SELFTEST_VERBOSE") == "1")
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return {"ask": run_ask, "cache": run_cache, "history": run_history,
                "library": run_library}[args.command](args)
    except DocFocusError as error:
        print(f"docfocus: {error.user_message()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ndocfocus: stopped.", file=sys.stderr)
        return 130
