"""The ``spec`` command: check, summarise and export network specs, list the presets.

    python -m explorer spec check FILE
    python -m explorer spec summary (FILE | --preset NAME)
    python -m explorer spec export (FILE | --preset NAME) --out model.py
    python -m explorer spec presets

Each takes ``--json``: one JSON object on stdout instead of the text (errors too: ``{"error": ...}``).
"""

from __future__ import annotations

import argparse
import json

from explorer.cli.common import one_line


def _shape_text(shape) -> str:
    if shape is None:
        return "unknown"
    return f"({shape[0]},)" if len(shape) == 1 else "x".join(str(s) for s in shape)


def add_spec_commands(sub) -> None:
    """Add ``spec`` with its sub-commands to the argparse subparsers object ``sub``."""
    spec = sub.add_parser("spec", help="check, summarise or export a network spec (JSON)",
                          description="Network specs: check, summary, export, presets.")
    ssub = spec.add_subparsers(dest="spec_command", required=True)
    check = ssub.add_parser("check", help="validate a spec file")
    check.add_argument("file", help="spec JSON file")
    summary = ssub.add_parser("summary", help="print the layer table (shapes, parameters, receptive fields, MACs)")
    summary.add_argument("file", nargs="?", help="spec JSON file")
    summary.add_argument("--preset", help="use a built-in preset instead of a file")
    export = ssub.add_parser("export", help="write a standalone PyTorch .py file for the network")
    export.add_argument("file", nargs="?", help="spec JSON file")
    export.add_argument("--preset", help="use a built-in preset instead of a file")
    export.add_argument("--out", required=True, help="the .py file to write")
    presets = ssub.add_parser("presets", help="list the built-in presets")
    for p in (check, summary, export, presets):
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    spec.set_defaults(func=run_spec_command)


def _values(spec, inf) -> dict:
    """A network's family, size and output as plain values (for ``--json``)."""
    return {"family": spec.family, "layers": len(spec.layers), "parameters": int(inf.total_params),
            "output_shape": list(inf.output_shape) if inf.output_shape is not None else None}


def _spec_from_file_or_preset(args):
    """The network of the FILE argument or of ``--preset NAME``: exactly one of them."""
    import explorer.core.families.registry  # noqa: F401 - it tells the spec checker the families
    from explorer.core.spec.network import load_preset, load_spec

    file, preset = getattr(args, "file", None), getattr(args, "preset", None)
    if (file is None) == (preset is None):
        raise ValueError("give either a spec FILE or --preset NAME")
    return load_preset(preset) if preset is not None else load_spec(file)


def run_spec_command(args: argparse.Namespace) -> int:
    """Run one ``spec`` sub-command; returns the exit code, raises SpecError/ValueError for errors."""
    from explorer.core.atomic import atomic_write_text
    from explorer.core.spec.network import (
        PRESETS,
        SpecError,
        export_source,
        infer,
        load_spec,
        preset_names,
        summary_table,
        validate,
    )

    cmd = args.spec_command
    if cmd == "presets":  # (listed without the families, which load PyTorch: a few seconds)
        if args.json:
            print(json.dumps({name: PRESETS[name]().description for name in preset_names()}))
        else:
            for name in preset_names():
                print(f"{name}: {PRESETS[name]().description}")
        return 0
    from explorer.core.families.registry import check_trainable  # (and it tells the spec checker the families)

    if cmd == "check":
        spec = load_spec(args.file)
        try:
            inf = validate(spec)
            check_trainable(spec)
        except (SpecError, ValueError) as exc:
            raise SpecError(f"{args.file}: {one_line(exc)}") from None
        if args.json:
            print(json.dumps({"file": args.file, "valid": True, **_values(spec, inf)}))
        else:
            print(f"{args.file}: valid {spec.family} network, {len(spec.layers)} layers, "
                  f"{inf.total_params:,} parameters, output shape {_shape_text(inf.output_shape)}")
        return 0
    if cmd == "summary":
        spec = _spec_from_file_or_preset(args)
        inf = infer(spec)
        if args.json:
            print(json.dumps({"valid": bool(inf.valid), **_values(spec, inf), "table": summary_table(spec)}))
        else:
            print(summary_table(spec))
        return 0 if inf.valid else 2
    if cmd == "export":
        spec = _spec_from_file_or_preset(args)
        source = export_source(spec)
        path = atomic_write_text(args.out, source)
        print(json.dumps({"wrote": str(path)}) if args.json else f"wrote {path}")
        return 0
    raise ValueError(f"unknown spec command {cmd!r}")
