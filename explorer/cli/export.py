"""The ``export`` command: a saved run's model as an ONNX graph and/or a safetensors weights file.

    python -m explorer export RUN_FOLDER --onnx model.onnx
    python -m explorer export RUN_FOLDER --safetensors weights.safetensors
    python -m explorer export RUN_FOLDER --onnx model.onnx --safetensors weights.safetensors

What each family's ONNX graph takes and gives is listed in ``explorer/core/persist/export.py``. A bad path, a
corrupt run or a missing package is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from explorer.cli.common import UsageError, one_line


def add_export_parser(sub) -> None:
    """``export`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("export", help="a run folder's model as ONNX and/or safetensors, for use outside the app")
    p.add_argument("path", help="a run folder (from Save run, autosave or train --out)")
    p.add_argument("--onnx", metavar="FILE", help="write the network's forward pass as an ONNX graph here")
    p.add_argument("--safetensors", metavar="FILE", help="write its weights and optimiser state here")
    p.add_argument("--data-dir", help="where the run's MNIST/Fashion-MNIST files are now, if they moved")
    p.add_argument("--json", action="store_true", help="print one JSON object (the files written) on stdout")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from explorer.core.persist.export import EXPORTERS, LABELS, file_size_text
    from explorer.core.persist.runfolder import load_run, restore_trainer

    wanted = [(kind, getattr(args, kind)) for kind in ("onnx", "safetensors") if getattr(args, kind)]
    if not wanted:
        raise UsageError("export needs --onnx FILE and/or --safetensors FILE")
    from explorer.core.safe_read import escape_text

    try:
        run = load_run(args.path)  # every file of the folder checked against its schema first
        overrides = {"device": "cpu"}  # a run saved on a GPU exports on any machine
        if args.data_dir:
            overrides["data_dir"] = args.data_dir
        trainer = restore_trainer(run, **overrides)
        written = []
        for kind, out in wanted:
            path = EXPORTERS[kind](trainer, out)
            written.append({"path": str(path), "format": kind, "bytes": Path(path).stat().st_size})
            if not args.json:
                print(f"wrote {escape_text(path)} ({file_size_text(path)}): the {run.family} model at step "
                      f"{trainer.step} as {LABELS[kind]}")
    except (ValueError, OSError) as exc:  # a bad run, data that moved, an unwritable output: one line, exit 2
        raise UsageError(one_line(exc)) from None
    if args.json:
        print(json.dumps({"family": run.family, "step": trainer.step, "wrote": written}))
    return 0
