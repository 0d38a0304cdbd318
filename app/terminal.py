"""What every ``docfocus`` command shares: the engine options, the settings they make, the progress bars and
how an answer is printed. Used by app/cli.py, app/library_commands.py and app/cache_commands.py."""
from __future__ import annotations

import argparse
import sys

from engine.ingest.extract import OCR_STAGE
from engine.settings import DEVICES, OPTIONS, EngineSettings


def _detail(choice) -> str:
    """A choice's technical detail for --help, without a repeat of its name ("dga: DGA: ..." reads as a stutter)."""
    text = choice.help or choice.label
    if text.lower().startswith(choice.value.lower() + ":"):
        text = text[len(choice.value) + 1:].strip()
    return text


def add_engine_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per engine setting that has a flag (engine/settings.py OPTIONS: choices, limits, help)."""
    defaults = EngineSettings()
    for option in OPTIONS:
        if option.flag is None or option.name in skip:
            continue
        default = defaults.get(option.path)
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
    """EngineSettings from the parsed options; each value is checked as typed (a bad one raises SettingsError
    naming its flag), before any conversion of its unit."""
    settings = EngineSettings(model=args.model, device_map=args.device_map)
    for option in OPTIONS:
        value = getattr(args, option.name, None)
        if value is not None:
            settings = settings.with_value(option.path, option.from_user(value))
    if getattr(args, "no_cache", False):
        settings = settings.changed(store={"use_cache": False})
    return settings


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


def print_answer(answer, library: bool = False) -> None:
    """The answer as the user reads it: the text, how it ended, its citations, then the evidence (stderr); from a
    library, each source names its document."""
    def where(item) -> str:
        title = (item.document or {}).get("title") or (item.document or {}).get("path") or "" if library else ""
        return f"{title}, p. {item.page}" if title else f"p. {item.page}"
    ending = {"length": " [cut at the length limit]", "stopped": " [stopped]"}.get(answer.finish, "")
    print((answer.answer or "(The model gave no answer.)") + ending, flush=True)
    if not answer.supported and not answer.stopped:
        print(unsupported_lines(answer, where(answer.quote) if answer.quote else ""), flush=True)
    if answer.citations:
        print("Sources: " + "; ".join(where(c) for c in answer.citations), flush=True)
    for item in answer.evidence[:3]:
        snippet = " ".join(item.text.split())[:100]
        print(f"  [{where(item)}] {snippet}", file=sys.stderr)


def unsupported_lines(answer, where: str) -> str:
    """What follows an answer that is not supported: the verdict and its reason, then the document's own sentence
    (what it says to the question, or the closest passage)."""
    scope = "library" if (answer.document or {}).get("library") else "document"
    quote = answer.quote
    badge = f"Not supported by the {scope}" if quote is not None and quote.answers else f"Not found in the {scope}"
    reason = answer.verdict.reason if answer.verdict is not None and answer.verdict.reason else ""
    lines = [f"[{badge}{': ' + reason if reason else ''}]"]
    if quote is not None:
        lines.append(f"{'The document says' if quote.answers else 'Closest passage'}, {where}: “{quote.text}”")
    return "\n".join(lines)
