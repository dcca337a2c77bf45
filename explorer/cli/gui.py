"""The ``gui`` command: open the app, optionally on a saved run, training at once, or with the builder open.

    python -m explorer gui --run runs/digits
    python -m explorer gui --builder lenet5

Qt is imported only when the window opens, so the rest of the command line runs where Qt is not installed.
"""

from __future__ import annotations

import argparse

from explorer.cli.rbm import add_rbm_options, rbm_config


def add_gui_parser(sub) -> None:
    """``gui`` on the top-level sub-parsers ``sub``; it takes the RBM's options, the model the window opens on."""
    p = sub.add_parser("gui", help="open the app (the default)")
    p.add_argument("--run", help="open a saved run folder")
    p.add_argument("--start", action="store_true", help="start training as soon as the window opens")
    p.add_argument("--builder", nargs="?", const="lenet5", metavar="PRESET|FILE",
                   help="also open the architecture builder (on a preset or a spec file)")
    add_rbm_options(p)
    p.set_defaults(func=cmd_gui)


def cmd_gui(args: argparse.Namespace | None) -> int:
    """Open the window; ``args`` None is the plain launch (no arguments at all): the app's own defaults."""
    from explorer.gui.app import run_app

    config = rbm_config(args) if args is not None else None
    run = getattr(args, "run", None) if args is not None else None
    return run_app(config=config, run_dir=run, start=bool(getattr(args, "start", False)),
                   builder=getattr(args, "builder", None))
