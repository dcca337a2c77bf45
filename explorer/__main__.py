"""``python -m explorer``: the app and its command line (``explorer.entry.run``)."""

from explorer.entry import run

run(prog="python -m explorer")
