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

DEVICES = ("auto", "cpu", "cuda", "mps")


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
    ask.add_argument("pdf", metavar="DOCUMENT", help="the document file")
    ask.add_argument("questions", nargs="+", metavar="QUESTION", help="one or more questions")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question, one per line")
    add_model_options(ask)
    ask.add_argument("--max-new-tokens", type=int, default=200, help="longest answer in tokens (default 200)")
    ask.add_argument("--password", help="password of an encrypted PDF")
    ask.add_argument("--attention", choices=["dga", "dense"], default="dga",
                     help="dga: Dynamic Group Attention (default; attends to about gamma + 1/group of the "
                          "document); dense: full attention")
    ask.add_argument("--gamma", type=float, default=0.1, help="DGA: fraction of document tokens kept exactly")
    ask.add_argument("--group", type=int, default=16, help="DGA: size of the groups the other tokens fold into")
    ask.add_argument("--reselect-every", type=int, default=None,
                     help="DGA: reselect kept tokens every N generated tokens (0: only at the question)")
    ask.add_argument("--long", choices=["select", "truncate"], default="select",
                     help="a document longer than the model's window: select (default) reads all of it and "
                          "answers from the passages that match each question; truncate answers from the "
                          "part that fits")
    ask.add_argument("--prefill", choices=["dense", "dga"], default="dense",
                     help="how a document that fits the window is read: dense (default) or dga (each chunk "
                          "sees older text only through focal and group tokens; faster on long documents)")
    ask.add_argument("--focal", type=int, default=None,
                     help="long documents: tokens each answer sees exactly (default 1536)")
    add_ocr_option(ask)
    add_cache_options(ask)
    add_cache_commands(commands)
    return parser


def add_ocr_option(ask: argparse.ArgumentParser) -> None:
    from engine.settings import OPTION

    option = OPTION["ocr_language"]
    ask.add_argument(option.flag, dest="ocr_language", choices=[c.value for c in option.choice_list()],
                     default="auto", help=f"{option.help}: " + "; ".join(f"{c.value}: {c.label}"
                                                                        for c in option.choice_list()))


def add_cache_options(ask: argparse.ArgumentParser) -> None:
    ask.add_argument("--cache-format", choices=["model", "fp16", "int8"], default="model",
                     help="how the document's state is stored for later questions: model (the model's dtype, "
                          "exact; default), fp16, or int8 (about half of fp16)")
    ask.add_argument("--cache-cap-gb", type=float, default=4.0,
                     help="size cap of the document state cache in GB (default 4); least recently used "
                          "states are dropped to stay under it")
    ask.add_argument("--no-cache", action="store_true",
                     help="neither use nor save the document state cache (the chat history is still kept)")


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
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where the model runs (default auto)")
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
    from engine.api import Engine, EngineSettings

    options = {} if args.reselect_every is None else {"reselect_every": args.reselect_every}
    engine = Engine(EngineSettings(model=args.model, device=args.device, device_map=args.device_map,
                                   max_new_tokens=args.max_new_tokens, attention_mode=args.attention,
                                   gamma=args.gamma, group_size=args.group, dga_options=options,
                                   cache_format=args.cache_format, use_cache=not args.no_cache,
                                   long_documents=args.long, prefill=args.prefill,
                                   long_options={} if args.focal is None else {"focal": args.focal},
                                   cache_cap_bytes=int(args.cache_cap_gb * 1024**3), ocr_language=args.ocr_language))
    progress = ProgressBar(enabled=sys.stderr.isatty() or not args.json)
    try:
        for question in args.questions:  # fail fast on an empty question before any heavy work
            if not question.strip():
                raise DocFocusError("A question is empty.", "Type a question about the document.")
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
                answer = engine.ask(doc, question, progress=progress, on_text=_print_piece)
                print(flush=True)
                print_evidence(answer)
            cache_notice = (answer.notice or "").removeprefix(doc.notice() or "").strip()
            if cache_notice:  # a cache problem (not saved, set aside), said once
                print(f"Note: {cache_notice}", file=sys.stderr)
    finally:
        progress.close()
    return 0


def _print_piece(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def print_evidence(answer) -> None:
    for item in answer.evidence[:3]:
        snippet = " ".join(item.text.split())[:100]
        print(f"  [p. {item.page}] {snippet}", file=sys.stderr)


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

        return {"ask": run_ask, "cache": run_cache, "history": run_history}[args.command](args)
    except DocFocusError as error:
        print(f"docfocus: {error.user_message()}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ndocfocus: stopped.", file=sys.stderr)
        return 130
