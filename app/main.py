"""Entry point: ``docfocus`` opens the window; ``docfocus COMMAND ...`` runs the command line."""
from __future__ import annotations

import sys
from pathlib import Path

COMMANDS = {"ask", "cache", "history"}


def wants_gui(argv: list[str]) -> bool:
    """No arguments, or a first argument that is a document (by its suffix: it may not exist yet, and the window
    says so) or any existing file, rather than a command or an option."""
    if not argv:
        return True
    first = argv[0]
    if first in COMMANDS or first.startswith("-") or len(argv) > 1:
        return False
    from engine.ingest.formats import SUFFIXES

    return Path(first).suffix.lower() in SUFFIXES or Path(first).is_file()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_gui(argv):
        from app.qt_libraries import check_window_libraries

        problem = check_window_libraries()
        if problem:  # instead of Qt's abort, which names one library of several
            print(problem, file=sys.stderr)
            return 1
        from app.gui import run_gui  # Qt is imported only for the window

        return run_gui(argv[0] if argv else None)
    from app import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
