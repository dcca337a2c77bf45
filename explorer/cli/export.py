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
    p.add_argument("--data-dir", metavar="DIR",
                   help="where the run's training data is now, if it moved: its MNIST/Fashion-MNIST files, or the "
                        "image folder (train cnn --image-folder) or image/mask folder (train fcn --mask-folder) it "
                        "was trained on. Only --onnx reads the data; --safetensors is written from the run folder "
                        "alone (but for a run whose run.json does not record its data's shape, from older versions)")
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


def data_overrides(run, data_dir: str | None) -> dict[str, str]:
    """``--data-dir`` as the setting that says where the run's training data is: the image folder of a CNN trained
    on one (``image_folder``), else ``data_dir`` (MNIST's files, an FCN's image/mask folder)."""
    if not data_dir:
        return {}
    return {"image_folder" if "image_folder" in run.config and run.config.get("dataset") == "folder"
            else "data_dir": data_dir}


def check_training_folder(run, overrides: dict[str, str]) -> None:
    """A run trained on the user's own folder (a CNN's images, an FCN's image/mask pairs) whose folder is not
    there: one line that says it is the run's training folder and how to point to it (the data set's own
    message, "F: not a folder", said neither)."""
    if run.config.get("dataset") != "folder":
        return
    key = "image_folder" if "image_folder" in run.config else "data_dir"
    if key in overrides:
        folder = overrides[key]
        if not Path(folder).is_dir():
            raise UsageError(f"--data-dir {folder}: not a folder (it names where the run's training images are now)")
        return
    folder = run.config.get(key)
    if isinstance(folder, str) and folder and not Path(folder).is_dir():
        raise UsageError(f"{folder}: the folder this run was trained on (config.{key} in its run.json) is not "
                         f"there, and --onnx rebuilds the model on its images: give where it is now with "
                         f"--data-dir DIR (--safetensors needs no data)")


def cmd_export(args: argparse.Namespace) -> int:
    """Write the files asked for. The weights come from the run folder itself, checked against the model its
    run.json describes, without reading any data; the ONNX graph needs the model rebuilt on its data (a run
    saved before run.json recorded its data's shape needs that for the weights too)."""
    from explorer.core.persist.export import EXPORTERS, LABELS, export_run_safetensors, file_size_text
    from explorer.core.persist.inspect import weights_unchecked
    from explorer.core.persist.runfolder import load_run, restore_trainer
    from explorer.core.safe_read import escape_text

    wanted = [(kind, getattr(args, kind)) for kind in ("onnx", "safetensors") if getattr(args, kind)]
    if not wanted:
        raise UsageError("export needs --onnx FILE and/or --safetensors FILE")
    if not args.path.strip():
        raise UsageError("export needs a run folder: the path given is empty")
    _check_outputs(args.path, wanted)
    try:
        run = load_run(args.path)  # every file of the folder checked against its schema first
        unchecked = weights_unchecked(run)  # the weights against the model run.json describes: no data read
        trainer = None
        if unchecked is not None or any(kind == "onnx" for kind, _ in wanted):
            overrides = data_overrides(run, args.data_dir)
            check_training_folder(run, overrides)
            trainer = restore_trainer(run, device="cpu", **overrides)  # a run saved on a GPU exports anywhere
        written = []
        for kind, out in wanted:
            path = EXPORTERS[kind](trainer, out) if trainer is not None else export_run_safetensors(run, out)
            written.append({"path": str(path), "format": kind, "bytes": Path(path).stat().st_size})
            if not args.json:
                print(f"wrote {escape_text(path)} ({file_size_text(path)}): the {run.family} model at step "
                      f"{run.step} as {LABELS[kind]}")
    except (ValueError, OSError) as exc:  # a bad run, data that moved, an unwritable output: one line, exit 2
        raise UsageError(one_line(exc)) from None
    if args.json:
        print(json.dumps({"family": run.family, "step": run.step, "wrote": written}))
    return 0
