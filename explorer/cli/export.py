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


def _check_outputs(run_path: str, wanted: list[tuple[str, str]]) -> None:
    """Refuse an output inside the run folder (a run folder is written whole or not at all: a file put in it,
    or over its run.json, would break the run) and one file named for both formats (the second would
    silently replace the first)."""
    run = Path(run_path).resolve()
    for kind, out in wanted:
        if Path(out).resolve().is_relative_to(run):
            raise UsageError(f"--{kind} {out}: inside the run folder {run_path}, which holds the run alone; "
                             f"write the export elsewhere")
    if len(wanted) == 2 and Path(wanted[0][1]).resolve() == Path(wanted[1][1]).resolve():
        raise UsageError(f"--onnx and --safetensors both name {wanted[0][1]}: give each its own file")


def cmd_export(args: argparse.Namespace) -> int:
    from explorer.core.persist.export import EXPORTERS, LABELS, file_size_text
    from explorer.core.persist.runfolder import load_run, restore_trainer

    wanted = [(kind, getattr(args, kind)) for kind in ("onnx", "safetensors") if getattr(args, kind)]
    if not wanted:
        raise UsageError("export needs --onnx FILE and/or --safetensors FILE")
    from explorer.core.safe_read import escape_text

    _check_outputs(args.path, wanted)
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
