"""The ``docfocus`` command line: ``ask`` (and, later, cache and history commands).

It uses the same engine API as the desktop app and never imports Qt.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from engine import __version__
from engine.errors import DocFocusError
from engine.ingest import OCR_STAGE
from engine.settings import DEVICES, OPTIONS, EngineSettings



def _detail(choice) -> str:
    """A choice's technical detail for --help, without a repeat of its name ("dga: DGA: ..." reads as a stutter)."""
    text = choice.help or choice.label
    if text.lower().startswith(choice.value.lower() + ":"):
        text = text[len(choice.value) + 1:].strip()
    return text


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
    ask.add_argument("--reselect-every", type=int, default=None,
                     help="DGA: re-open the groups the answer points at every N generated tokens (0: never)")
    add_engine_options(ask, skip=("device",))
    ask.add_argument("--no-cache", action="store_true",
                     help="neither use nor save the document state cache (the chat history is still kept)")
    add_cache_commands(commands)
    from app.library_commands import add_library_commands

    add_library_commands(commands, add_model_options, add_engine_options)
    return parser


def add_engine_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per engine setting that has a flag (engine/settings.py OPTIONS: choices, limits, help)."""
    defaults = EngineSettings()
    for option in OPTIONS:
        if option.flag is None or option.name in skip:
            continue
        default = getattr(defaults, option.name)
        choices = option.choice_list()
        if choices:
            parser.add_argument(option.flag, dest=option.name, choices=[c.value for c in choices], default=None,
                                help=f"{option.help} (default {default}): " +
                                     "; ".join(f"{c.value}: {_detail(c)}" for c in choices))
        else:
            kind = int if isinstance(default, int) and option.scale == 1 else float
            shown = default / option.scale
            parser.add_argument(option.flag, dest=option.name, type=kind, default=None,
                                help=f"{option.help} (default {shown:g}{option.unit})")


def engine_settings(args: argparse.Namespace) -> EngineSettings:
    """EngineSettings from the parsed options; checked (a bad value raises SettingsError with the flag)."""
    chosen = {}
    for option in OPTIONS:
        value = getattr(args, option.name, None)
        if value is not None:
            chosen[option.name] = int(value * option.scale) if option.scale != 1 else value
    options = {} if getattr(args, "reselect_every", None) is None else {"reselect_every": args.reselect_every}
    return EngineSettings(model=args.model, device_map=args.device_map, dga_options=options,
                          use_cache=not getattr(args, "no_cache", False), **chosen)


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


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="bundled",
                        help="'bundled' (SmolLM2-135M-Instruct, offline), a local model folder, a .gguf file, "
                             "or a hub id (needs the network once)")
    parser.add_argument("--device", choices=[c.value for c in DEVICES], default="auto",
                        help="where the model runs (default auto: CUDA, then Apple MPS, then the CPU)")
    parser.add_argument("--device-map", choices=["auto"], default=None,
                        help="'auto' spreads a model too large for one GPU over several")


class ProgressBar:
    """A progress bar on stderr per stage (model load, reading the document)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, object] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(stage)
        if bar is None:
            unit = "page" if stage == OCR_STAGE else "tok" if total > 1 else "step"
            bar = self._bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False, unit=unit)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def run_ask(args: argparse.Namespace) -> int:
    from engine.api import Engine

    if args.library:
        args.questions = [args.pdf, *args.questions]
    elif not args.questions:
        raise DocFocusError("No question was given.", "docfocus ask DOCUMENT QUESTION... (or ask --library QUESTION...)")
    for question in args.questions:  # fail fast on bad options or an empty question before any heavy work
        if not question.strip():
            raise DocFocusError("A question is empty.", "Type a question about the document.")
    engine = Engine(engine_settings(args))
    progress = ProgressBar(enabled=sys.stderr.isatty() or not args.json)
    if args.library:
        from app.library_commands import run_ask_library

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
            cache_notice = (answer.notice or "").removeprefix(doc.notice() or "").strip()
            if cache_notice:  # a cache problem (not saved, set aside), said once
                print(f"Note: {cache_notice}", file=sys.stderr)
    finally:
        progress.close()
    return 0


def print_answer(answer, library: bool = False) -> None:
    """The answer as the user reads it: the text, how it ended, its citations, then the evidence (stderr); from a
    library, each source names its document."""
    def where(item) -> str:
        title = (item.document or {}).get("title") or (item.document or {}).get("path") or "" if library else ""
        return f"{title}, p. {item.page}" if title else f"p. {item.page}"
    ending = {"length": " [cut at the length limit]", "stopped": " [stopped]"}.get(answer.finish, "")
    print(answer.answer + ending, flush=True)
    if answer.citations:
        print("Sources: " + "; ".join(where(c) for c in answer.citations), flush=True)
    for item in answer.evidence[:3]:
        snippet = " ".join(item.text.split())[:100]
        print(f"  [{where(item)}] {snippet}", file=sys.stderr)


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
        from app.cache_commands import run_cache, run_history
        from app.library_commands import run_library

        return {"ask": run_ask, "cache": run_cache, "history": run_history,
                "library": run_library}[args.command](args)
    except DocFocusError as error:
        print(f"docfocus: {error.user_message()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ndocfocus: stopped.", file=sys.stderr)
        return 130
