"""Fuzz: mutated PDFs must never crash DocFocus nor hang it (issue 23).

Each mutant is a seed PDF with one to three random edits (bytes flipped or overwritten, a span cut, copied or
deleted, the file truncated, a PDF token replaced: a length, a count, a keyword, a huge or negative number).
A worker process reads each mutant as ``docfocus ask`` does before its model runs (``ingest_pdf``: open, limits,
text layer, repair notice) and then as the window does (open, draw and list the words of the first pages).

- *clean*: read, or refused with a DocFocusError (the user sees a one-paragraph message);
- *crash*: any other exception from reading, or the worker dying (a signal, an abort);
- *hang*: no result within ``TIMEOUT_S`` (the worker is killed and a new one started).

An exception while drawing a page is counted apart (``viewer_errors``): the window catches those and shows
"Cannot show the document"; it is not a crash. Scanned-looking pages are not recognised (OCR is not what is
fuzzed): reading stops there with a CancelledError, a clean refusal.

    python -m bench.fuzz --mutants 1000        # the full run (about 10 s on 2 cores)
    python -m bench --only fuzz [--quick]      # as a bench section (1,000 mutants, 200 with --quick)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 30.0
PASSWORD = "fuzz"
TOKENS = [b"/Length 0", b"/Length 99999999", b"/Count -1", b"/Count 2147483647", b"/Count 0", b"obj", b"endobj",
          b"stream", b"endstream", b"xref", b"trailer", b"startxref", b"%%EOF", b"/Type /Pages", b"/Kids [",
          b"]", b"<<", b">>", b"/FlateDecode", b"/Filter /LZWDecode", b"R", b"0 0 R", b"-1", b"4294967296",
          b"1e308", b"(", b")", b"/Encrypt", b"/Parent 1 0 R", b"/MediaBox [0 0 0 0]", b"/Rotate 45"]


# ---------------------------------------------------------------- seeds and mutants


def seeds(folder: Path) -> list[tuple[Path, str | None]]:
    """The seed PDFs: the bundled sample and PDFs made here (plain, compressed with object streams, with an
    outline, images and links, and encrypted), each with the password it opens with."""
    import pymupdf

    made = [(ROOT / "resources" / "sample.pdf", None)]
    document = pymupdf.open()
    picture = pymupdf.Pixmap(pymupdf.csRGB, (0, 0, 64, 48), 0)
    picture.clear_with(180)  # a new pixmap holds whatever was in memory: the seeds must be the same every run
    for number in range(4):
        page = document.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 520, 700), f"Page {number + 1}. The harbour master keeps the "
                            "tide tables in a blue cabinet. " * 12, fontsize=10)
        page.insert_image(pymupdf.Rect(72, 710, 200, 800), pixmap=picture)
        page.insert_link({"kind": pymupdf.LINK_GOTO, "from": pymupdf.Rect(72, 72, 200, 90), "page": 0})
    document.set_toc([[1, "One", 1], [2, "Two", 2], [1, "Three", 3]])
    for name, options in (("plain.pdf", {}), ("packed.pdf", {"garbage": 4, "deflate": True, "use_objstms": 1}),
                          ("locked.pdf", {"encryption": pymupdf.PDF_ENCRYPT_RC4_128, "user_pw": PASSWORD,
                                          "owner_pw": PASSWORD + "!"})):
        document.save(folder / name, no_new_id=True, **options)
        made.append((folder / name, PASSWORD if name == "locked.pdf" else None))
    return made


def _span(out: bytearray, rng: random.Random, longest: int = 64) -> slice:
    start = rng.randrange(len(out))
    return slice(start, start + rng.randint(1, min(longest, len(out) - start)))


def _flip(out: bytearray, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 16)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)


def _overwrite(out: bytearray, rng: random.Random) -> None:
    span = _span(out, rng)
    out[span] = bytes(rng.randrange(256) for _ in range(span.stop - span.start))


def _truncate(out: bytearray, rng: random.Random) -> None:
    del out[rng.randint(1, len(out)):]


def _truncate_early(out: bytearray, rng: random.Random) -> None:  # the header and the first objects only
    del out[rng.randint(8, max(8, min(len(out), 1024))):]


def _delete(out: bytearray, rng: random.Random) -> None:
    del out[_span(out, rng, 1024)]


def _duplicate(out: bytearray, rng: random.Random) -> None:
    at = rng.randrange(len(out))
    out[at:at] = out[_span(out, rng, 4096)]


def _insert_token(out: bytearray, rng: random.Random) -> None:
    at = rng.randrange(len(out))
    out[at:at] = rng.choice(TOKENS) + b" "


def _replace_token(out: bytearray, rng: random.Random) -> None:
    word = rng.choice(TOKENS).split()[0]
    found = out.find(word, rng.randrange(len(out)))
    if found >= 0:
        out[found:found + len(word)] = rng.choice(TOKENS)


EDITS = (_flip, _overwrite, _truncate, _truncate_early, _delete, _duplicate, _insert_token, _replace_token)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits of ``data`` (EDITS)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if len(out) < 2:
            break
        rng.choice(EDITS)(out, rng)
    return bytes(out)


# ---------------------------------------------------------------- the worker: one mutant at a time


def read_like_docfocus(path: str, password: str | None) -> dict:
    """What ``docfocus ask`` does with the file before its model runs, then what the window does with it."""
    from engine.errors import DocFocusError
    from engine.ingest.extract import ingest_pdf, open_pdf

    try:
        document = ingest_pdf(path, password, should_stop=lambda: True)
        outcome = {"outcome": "read", "pages": len(document.pages), "words": len(document.words)}
    except DocFocusError as error:
        outcome = {"outcome": "refused", "message": str(error)[:200]}
    except Exception as error:  # noqa: BLE001 - what the fuzz is looking for
        return {"outcome": "crash", "error": f"{type(error).__name__}: {error}"[:300]}
    try:
        shown = open_pdf(path, password)
    except DocFocusError:
        return outcome
    try:
        for page in list(shown)[:3]:
            page.get_pixmap(matrix=__import__("pymupdf").Matrix(0.3, 0.3))
            page.get_text("words")
    except Exception as error:  # noqa: BLE001 - the window catches it and says it cannot show the document
        outcome["viewer_error"] = f"{type(error).__name__}: {error}"[:200]
    finally:
        shown.close()
    return outcome


def worker() -> None:
    """Read ``path\\tpassword`` lines on stdin; write one JSON result line per mutant."""
    for line in sys.stdin:
        path, _, password = line.rstrip("\n").partition("\t")
        started = time.perf_counter()
        result = read_like_docfocus(path, password or None)
        result["seconds"] = round(time.perf_counter() - started, 3)
        print(json.dumps(result), flush=True)


class Worker:
    """A worker process (``command``: this module's ``--worker``), restarted after a crash or a hang."""

    def __init__(self, command: list[str] | None = None) -> None:
        self.command = command or [sys.executable, "-m", "bench.fuzz", "--worker"]
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, bufsize=1)

    def read(self, path: Path, password: str | None, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self.start()
        self.process.stdin.write(f"{path}\t{password or ''}\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            self.stop()
            return {"outcome": "hang", "seconds": timeout}
        line = self.process.stdout.readline()
        if not line:  # the worker died: a signal or an abort in native code
            code = self.process.wait()
            self.process = None
            return {"outcome": "crash", "error": f"the worker died (exit status {code})"}
        return json.loads(line)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


# ---------------------------------------------------------------- a run


def fuzz(mutants: int, seed: int = 0, timeout: float = TIMEOUT_S, keep: Path | None = None) -> dict:
    """Read ``mutants`` mutated PDFs; the counts, the slowest read, and each crash and hang (its mutant is
    kept in ``keep`` when given)."""
    rng = random.Random(seed)
    counts = {"read": 0, "refused": 0, "crash": 0, "hang": 0, "viewer_errors": 0}
    found, slowest, started = [], 0.0, time.perf_counter()
    worker_process = Worker()
    with tempfile.TemporaryDirectory(prefix="docfocus-fuzz-") as folder:
        sources = [(path.read_bytes(), password) for path, password in seeds(Path(folder))]
        try:
            for number in range(mutants):
                data, password = sources[number % len(sources)]
                path = Path(folder) / f"mutant-{number:05}.pdf"
                path.write_bytes(mutate(data, rng))
                result = worker_process.read(path, password, timeout)
                counts[result["outcome"]] += 1
                counts["viewer_errors"] += "viewer_error" in result
                slowest = max(slowest, result.get("seconds", 0.0))
                if result["outcome"] in ("crash", "hang"):
                    found.append({"mutant": number, **result})
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        path.replace(keep / path.name)
                        continue
                path.unlink()
        finally:
            worker_process.stop()
    return {"mutants": mutants, "seed": seed, **counts, "slowest_s": round(slowest, 2),
            "elapsed_s": round(time.perf_counter() - started, 1), "found": found}


def run(quick: bool, out_dir: Path) -> dict:
    """The bench section: 1,000 mutants (200 with --quick)."""
    result = fuzz(200 if quick else 1000, keep=out_dir / "fuzz-found")
    result["markdown"] = (
        "| mutants | read | refused (a message) | crashes | hangs | viewer errors (shown) | slowest | time |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['mutants']} | {result['read']} | {result['refused']} | {result['crash']} | {result['hang']} | "
        f"{result['viewer_errors']} | {result['slowest_s']} s | {result['elapsed_s']} s |\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before a read counts as a hang")
    parser.add_argument("--keep", type=Path, help="a folder to keep the mutants that crashed or hung")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker()
        return 0
    result = fuzz(args.mutants, args.seed, args.timeout, args.keep)
    print(json.dumps(result, indent=2))
    return 1 if result["crash"] or result["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
