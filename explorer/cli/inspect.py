"""The ``inspect`` command: what a run folder, weights file or network file holds, summarised.

    python -m explorer inspect runs/digits
"""

from __future__ import annotations

import argparse
import json

from explorer.cli.common import UsageError, one_line


def add_inspect_parser(sub) -> None:
    """``inspect`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("inspect", help="what a run folder, weights file or network file holds")
    p.add_argument("path", help="a run folder, a .safetensors file or a network .json file")
    p.add_argument("--json", action="store_true", help="print one JSON object (what the file holds) on stdout")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the summary; any fault of the file is one line naming it (control characters escaped), exit 2."""
    from explorer.core.persist.inspect import inspect_path, inspect_path_values

    try:
        if args.json:
            print(json.dumps(inspect_path_values(args.path)))
        else:
            print(inspect_path(args.path))
    except (ValueError, OSError) as exc:
        raise UsageError(one_line(exc)) from None
    return 0
