"""The program's entry point: the console script ``network-explorer`` and ``python -m explorer``.

Why a module of its own: a Ctrl+C while the command line itself is imported (its modules, a few tenths of a
second) comes before any of its handlers, and printed the interpreter's traceback. Here the import is
guarded, with the line and the status (130) the command line gives a Ctrl+C later on.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def run(prog: str = "network-explorer") -> NoReturn:
    """Import the command line and run it (``explorer.cli.run``); a Ctrl+C during the import: one line, 130."""
    try:
        from explorer.cli import run as run_command_line
    except KeyboardInterrupt:
        sys.stderr.write("explorer: interrupted while starting; nothing was written\n")
        sys.stderr.flush()
        os._exit(130)  # (not sys.exit: see explorer.cli.run)
    run_command_line(prog=prog)


__all__ = ["run"]
