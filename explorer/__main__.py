"""``python -m explorer``: the app and its command line (``explorer.cli.run``)."""

import sys

try:
    from explorer.cli import run
except KeyboardInterrupt:  # Ctrl+C while the command line loads: one line and status 130 as later on, no traceback
    import os

    sys.stderr.write("explorer: interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(130)  # (not sys.exit: see explorer.cli.run)

run(prog="python -m explorer")
