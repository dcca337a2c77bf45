"""The ``gui`` command: open the app, optionally on a saved run, training at once, or with the builder open.

    python -m explorer gui --run runs/digits
    python -m explorer gui --builder lenet5

Qt is imported only when the window opens, so the rest of the command line runs where Qt is not installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from explorer.cli.common import UsageError
from explorer.cli.rbm import add_rbm_options, rbm_config

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")  # which of them this machine has, the window says


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
    if args is not None:
        check_gui_options(args)
    run = getattr(args, "run", None) if args is not None else None
    return run_app(config=config, run_dir=run, start=bool(getattr(args, "start", False)),
                   builder=getattr(args, "builder", None))


def check_gui_options(args: argparse.Namespace) -> None:
    """What can be checked before the window opens: a mistyped run folder, device or builder preset is one
    line and exit 2 here, as in every other command (the window would open on the default model with a
    notice). Faults deeper in a run (its weights) the window reports. (A run's settings are checked by the
    families' rules, which load PyTorch: ``--run`` costs the start-up window a second.)"""
    from explorer.core.persist.schema import SchemaError, read_run_info

    device = (args.device or "auto").lower()
    base, _, index = device.partition(":")
    if base not in DEVICE_NAMES or (index and not (base == "cuda" and index.isdecimal())):
        raise UsageError(f"--device {args.device}: unknown device; choose one of {', '.join(DEVICE_NAMES)} "
                         f"(or cuda:N)")
    if args.run:
        try:
            read_run_info(args.run)  # (what opening it checks first; its weights the window reads)
        except SchemaError as exc:
            raise UsageError(f"--run {exc}") from None
    if args.builder and Path(args.builder).suffix != ".json":
        from explorer.core.spec.network import preset_names

        if args.builder not in preset_names():
            raise UsageError(f"--builder {args.builder}: no such preset (choose one of {', '.join(preset_names())}) "
                             f"and not a .json spec file")
    elif args.builder:
        from explorer.core.spec.network import SpecError, load_spec

        try:
            load_spec(args.builder)
        except (SpecError, OSError) as exc:
            raise UsageError(str(exc)) from None
