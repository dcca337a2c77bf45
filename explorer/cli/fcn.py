"""Segmentation FCNs on the command line: ``train fcn``, ``snapshot fcn|fcn-compare``.

    python -m explorer train fcn --epochs 10 --json                       # unet-small on generated scenes
    python -m explorer train fcn --no-skips --epochs 10 --json            # the same without skip connections
    python -m explorer train fcn --mask-folder DIR --spec my_fcn.json     # your image/mask pairs
    python -m explorer snapshot fcn --steps 300 --out fcn.png
    python -m explorer snapshot fcn-compare --steps 300 --out skips.png  # with and without skips side by side
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    add_run_options,
    add_snapshot_options,
    add_spec_source,
    config_from_spec_file,
    device_name,
    finite_float,
    load_spec_file,
    positive_float,
    positive_int,
    render_snapshot_png,
    report,
    run_training,
    seed_number,
    validate_options,
)
from explorer.cli.distributed import add_gpus_options, run_data_parallel


def _unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return v


def add_fcn_options(p: argparse.ArgumentParser, *, skips_option: bool = True) -> None:
    """Data, network and optimiser options of the FCN family (train and snapshot)."""
    add_spec_source(p)  # --spec FILE / --preset NAME (default preset: unet-small)
    if skips_option:
        p.add_argument("--no-skips", action="store_true",
                       help="drop the network's skip connections (Concat layers)")
    p.add_argument("--mask-folder", metavar="DIR",
                   help="train on your image/mask pairs: DIR/images/NAME.png + DIR/masks/NAME.png, or "
                        "DIR/NAME.png + DIR/NAME_mask.png (mask values = class numbers); default: generated scenes")
    p.add_argument("--scenes", type=positive_int, default=1000, help="generated training scenes (default 1000)")
    p.add_argument("--test-scenes", type=positive_int, default=200, help="generated held-out scenes (default 200)")
    p.add_argument("--noise", type=_unit_float, default=0.1, help="pixel noise std of the scenes (default 0.1)")
    p.add_argument("--no-texture", action="store_true", help="flat scene backgrounds instead of textured ones")
    p.add_argument("--max-shapes", type=positive_int, default=3, help="shapes per scene, at most (default 3)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                   help="optimiser (default: the spec's, adam for unet-small)")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the spec's, 0.001)")
    p.add_argument("--momentum", type=finite_float, default=0.9, help="momentum for sgd (default 0.9)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default: the spec's, 16)")
    p.add_argument("--eval-samples", type=positive_int, default=200,
                   help="images per evaluation, held-out and training (default 200)")
    p.add_argument("--device", type=device_name, default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0)")


def fcn_config(args: argparse.Namespace, compare: bool = False):
    """The FCN (or with/without-skips comparison) settings from the options; ValueError with a message."""
    from explorer.core.families.fcn.trainer import FCNConfig, compare_config_from, config_from_spec
    from explorer.core.spec.network import load_preset

    spec = load_spec_file(args.spec) if args.spec else load_preset(args.preset or "unet-small")
    base = FCNConfig(dataset="folder" if args.mask_folder else "scenes", data_dir=args.mask_folder,
                     n_train=args.scenes, n_test=args.test_scenes, noise=args.noise, texture=not args.no_texture,
                     max_shapes=args.max_shapes, momentum=args.momentum, eval_samples=args.eval_samples,
                     device=args.device, seed=args.seed, skips=not getattr(args, "no_skips", False))
    cfg = config_from_spec_file(config_from_spec, spec, base, args)  # the options' own values checked first
    explicit = {k: getattr(args, k) for k in ("optimizer", "lr", "batch_size") if getattr(args, k) is not None}
    if explicit:
        for k, v in explicit.items():
            setattr(cfg, k, v)
        validate_options(cfg, args)
    return compare_config_from(cfg) if compare else cfg


def add_train_parser(fam) -> None:
    """``train fcn`` on the ``train`` sub-parsers ``fam``."""
    p = fam.add_parser("fcn", help="fully convolutional network: per-pixel segmentation (mean IoU, pixel accuracy)")
    add_fcn_options(p)
    add_run_options(p)
    add_gpus_options(p)
    p.set_defaults(func=cmd_train_fcn)


def add_snapshot_parsers(sfam) -> None:
    """``snapshot fcn`` (alias ``segmentation``) and ``snapshot fcn-compare`` (alias ``skips``: the same network
    with and without its skip connections, side by side) on the ``snapshot`` sub-parsers ``sfam``."""
    for name, aliases, text, compare, command in (
            ("fcn", ["segmentation"], "the FCN segmentation panel", False, cmd_snapshot_fcn),
            ("fcn-compare", ["skips"], "the FCN with and without skip connections", True, cmd_snapshot_fcn_compare)):
        p = sfam.add_parser(name, aliases=aliases, help=text)
        add_fcn_options(p, skips_option=not compare)
        add_snapshot_options(p)
        p.set_defaults(func=command)


def fcn_trainer(args: argparse.Namespace):
    """The FCN trainer of the options (each rank of a ``--gpus`` run makes its own)."""
    from explorer.core.families.fcn.trainer import FCNTrainer

    return FCNTrainer(fcn_config(args))


def cmd_train_fcn(args: argparse.Namespace) -> int:
    """Train; ``--json`` adds ``miou`` (held-out mean IoU), ``pixel_accuracy`` (held-out), ``iou`` per class."""
    from explorer.core.families.fcn.trainer import FCNTrainer

    if args.gpus is not None or args.steps is not None:
        return run_data_parallel(args, "fcn", fcn_trainer)
    cfg = fcn_config(args)
    if not args.quiet:
        what = "generating scenes" if cfg.dataset == "scenes" else f"reading {cfg.data_dir}"
        sys.stderr.write(f"{what}...\r")
        sys.stderr.flush()
    trainer = FCNTrainer(cfg)
    if trainer.dataset.note and cfg.dataset == "folder" and not args.quiet:
        sys.stderr.write(f"{trainer.dataset.note}\n")
    rc, result = run_training(trainer, args, ("heldout_miou", "held-out mIoU"))
    if rc:
        return rc
    last: dict[str, Any] = result["history"][-1] if result["history"] else {}
    names = trainer.class_names
    result.update(
        network=cfg.network_spec().name or "custom", skips=bool(cfg.skips), classes=list(names),
        optimizer=cfg.optimizer, lr=cfg.lr, image_shape=[trainer.height, trainer.width],
        miou=last.get("heldout_miou"), pixel_accuracy=last.get("heldout_pixel_accuracy"),
        iou={n: last.get(f"heldout_iou_{n}") for n in names},
        train_miou=last.get("train_miou"), train_pixel_accuracy=last.get("train_pixel_accuracy"),
        data_note=trainer.dataset.note)
    result.pop("hidden", None)
    result.pop("n_visible", None)
    miou = result["miou"] if result["miou"] is not None else float("nan")
    acc = result["pixel_accuracy"] if result["pixel_accuracy"] is not None else float("nan")
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out mean IoU {miou:.3f}, pixel accuracy {acc:.3f}, "
                         f"{result['samples_per_s'] or 0:.0f} samples/s")
    return 0


def cmd_snapshot_fcn(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, fcn_config)


def cmd_snapshot_fcn_compare(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, lambda a: fcn_config(a, compare=True))
