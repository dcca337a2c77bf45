"""``python -m explorer.cli``: the command line, named as it was invoked."""

from explorer.cli import run

if __name__ == "__main__":
    run(prog="python -m explorer.cli")
