"""Command line: open the app, train headless, render a panel to PNG.

    python -m explorer                      open the app (digits, RBM)
    python -m explorer --version
    python -m explorer gui [--run DIR] [--dataset NAME] [--data-dir DIR]
    python -m explorer train rbm|autoencoder|ae|dae|dbn|mlp [options] [--json]
    python -m explorer train lstm|rnn --task adding|recall|sine|sawtooth|text [options] [--json]
    python -m explorer train cnn [--preset NAME | --spec FILE] [--image-folder DIR] [options] [--json]
    python -m explorer snapshot rbm|ae|dae|gradients|pretrain --steps N --out FILE.png [options]
    python -m explorer snapshot cnn --steps N --out FILE.png [options]
    python -m explorer snapshot lstm|rnn --task NAME --steps N --out FILE.png [options]
    python -m explorer spec check|summary|export|presets ...
    python -m explorer inspect PATH         a run folder, weights file or network file, summarised
    python -m explorer export RUN [--onnx FILE] [--safetensors FILE]   a run's model for use elsewhere

Bad arguments exit with status 2 and a one-line message.

One module per command or model family adds its sub-parsers and names the function that runs each
(``set_defaults(func=...)``); they share ``common``, which imports none of them. This module only puts the
parser together, in the order ``--help`` lists the commands, and runs what was asked for.
"""

from __future__ import annotations

import sys
from typing import Sequence

from explorer import __version__
from explorer.core.logs import configure_logging
from explorer.cli import (autoencoder, cnn, export, fcn, gui, inspect, mlp, rbm, recurrent, snapshot, spec,
                          train)
from explorer.cli.common import OneLineParser, UsageError

PROG = "network-explorer"
"""The program's name in usage lines: the console script's. ``python -m explorer`` passes its own."""

__all__ = ["PROG", "build_parser", "main"]


def build_parser(prog: str = PROG) -> OneLineParser:
    """The whole parser; ``prog`` names the program in its usage lines (and those of every sub-command)."""
    parser = OneLineParser(prog=prog, description="Network Explorer: watch neural networks learn, live.")
    parser.add_argument("--version", action="version", version=f"Network Explorer {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    gui.add_gui_parser(sub)

    fam = train.add_train_command(sub)
    rbm.add_train_parser(fam)
    autoencoder.add_train_parsers(fam)
    mlp.add_train_parsers(fam)  # dbn, mlp
    fcn.add_train_parser(fam)
    cnn.add_train_parser(fam)
    recurrent.add_train_parsers(fam)  # lstm, rnn

    spec.add_spec_commands(sub)
    export.add_export_parser(sub)
    inspect.add_inspect_parser(sub)

    panels = snapshot.add_snapshot_command(sub)
    rbm.add_snapshot_parser(panels)
    autoencoder.add_snapshot_parsers(panels)
    mlp.add_snapshot_parsers(panels)  # gradients, pretrain
    recurrent.add_snapshot_parsers(panels)  # lstm, rnn
    fcn.add_snapshot_parsers(panels)  # fcn, fcn-compare
    cnn.add_snapshot_parser(panels)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the command line (``argv``, else ``sys.argv[1:]``); returns the exit status."""
    if not (sys.argv[1:] if argv is None else argv):
        # the plain launch: straight to the window, without the parser (its sub-commands import torch,
        # which the start-up window loads on a thread while it is already on screen; see gui/startup.py)
        return gui.cmd_gui(None)
    configure_logging(role="cli")
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        command = getattr(args, "func", None)
        if command is None:  # options but no command: the window, as with no arguments
            return gui.cmd_gui(None)
        return command(args)
    except UsageError as exc:
        print(f"explorer: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # DataError, DeviceError, RunFolderError, bad settings, file errors
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"explorer: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("explorer: interrupted", file=sys.stderr)
        return 130
