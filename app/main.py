"""Entry point: ``docfocus`` opens the window; ``docfocus COMMAND ...`` runs the command line."""
from __future__ import annotations

import sys

COMMANDS = {"ask", "cache", "history"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from app import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
