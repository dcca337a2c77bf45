"""``python -m explorer.cli``: the command line, named as it was invoked."""

import sys

from explorer.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m explorer.cli"))
