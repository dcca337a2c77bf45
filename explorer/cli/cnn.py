"""Convolutional networks on the command line: ``train cnn``, ``snapshot cnn``.

    python -m explorer train cnn --epochs 8 --json                        # LeNet-5 on the digits (resized to 28x28)
    python -m explorer train cnn --preset alexnet-small --epochs 2        # any CNN preset, or --spec FILE
    python -m explorer train cnn --dataset mnist --data-dir DIR --epochs 2
    python -m explorer train cnn --image-folder DIR --epochs 20           # your images, one sub-folder per class
    python -m explorer snapshot cnn --steps 300 --out cnn.png
"""

from __future__ import annotations

import argparse
import sys

from explorer.cli.common import (
    DATASETS,
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


def add_cnn_options(p: argparse.ArgumentParser) -> None:
    """Data, network and optimiser options of the CNN family (train and snapshot)."""
    p.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="training data (default: digits); images are resized to the network's input")
    p.add_argument("--data-dir", help="folder with MNIST/Fashion-MNIST IDX files (.gz or raw)")
    p.add_argument("--download", action="store_true", help="download MNIST/Fashion-MNIST into the user cache if missing")
    p.add_argument("--image-folder", metavar="DIR",
                   help="train on your own images: DIR/<class name>/*.png (one sub-folder per class); "
                        "unreadable and odd-sized images are skipped and counted")
    add_spec_source(p)  # --spec FILE / --preset NAME (default: lenet5)
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default 0.03, or the spec's)")
    p.add_argument("--momentum", type=finite_float, default=None, help="momentum (default 0.9, or the spec's)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default 32, or the spec's)")
    p.add_argument("--eval-samples", type=positive_int, default=1000,
                   help="examples per evaluation, held-out and training (default 1000)")
    p.add_argument("--device", type=device_name, default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0)")


def cnn_config(args: argparse.Namespace):
    """The CNN settings from the options: ``--spec``/``--preset`` (its lr, momentum and batch size), then the
    explicit ``--lr``/``--momentum``/``--batch-size``; ValueError with a message when something is refused."""
    from explorer.core.families.cnn.trainer import CNNConfig, config_from_spec
    from explorer.core.spec.network import load_preset

    base = CNNConfig(dataset="folder" if args.image_folder else args.dataset, data_dir=args.data_dir,
                     image_folder=args.image_folder, download=args.download, eval_samples=args.eval_samples,
                     device=args.device, seed=args.seed)
    if args.spec or args.preset:
        cfg = config_from_spec_file(config_from_spec, load_spec_file(args.spec) if args.spec else load_preset(args.preset),
                                    base, args)
    else:
        cfg = base
    for key in ("lr", "momentum", "batch_size"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    validate_options(cfg, args)
    return cfg


def add_train_parser(fam) -> None:
    """``train cnn`` on the ``train`` sub-parsers ``fam``."""
    p = fam.add_parser("cnn", help="convolutional network from the builder (LeNet-5 by default): held-out accuracy")
    add_cnn_options(p)
    add_run_options(p)
    add_gpus_options(p)
    p.set_defaults(func=cmd_train_cnn)


def add_snapshot_parser(sfam) -> None:
    """``snapshot cnn`` on the ``snapshot`` sub-parsers ``sfam``."""
    p = sfam.add_parser("cnn", help="the CNN panel: a probe's feature maps, filters, receptive fields")
    add_cnn_options(p)
    add_snapshot_options(p)
    p.set_defaults(func=cmd_snapshot_cnn)


def cmd_train_cnn(args: argparse.Namespace) -> int:
    """Train; ``--json`` adds ``accuracy`` (held-out), ``loss`` (held-out), ``train_accuracy``, ``network``,
    ``input_shape``, ``classes`` and ``data_note`` to the common fields."""
    from explorer.core.families.cnn.trainer import CNNTrainer

    if args.gpus is not None or args.steps is not None:
        return run_data_parallel(args, "cnn", cnn_trainer)
    cfg = cnn_config(args)
    trainer = CNNTrainer(cfg)
    if cfg.dataset == "folder" and trainer.dataset.note and not args.quiet:
        sys.stderr.write(f"{trainer.dataset.note}\n")
    rc, result = run_training(trainer, args, ("heldout_accuracy", "held-out accuracy"))
    if rc:
        return rc
    last = result["history"][-1] if result["history"] else {}
    result.pop("hidden", None)
    result.update(network=cfg.network_name(), input_shape=list(trainer.input_shape), lr=cfg.lr,
                  momentum=cfg.momentum, classes=list(trainer.class_names),
                  accuracy=last.get("heldout_accuracy"), loss=last.get("heldout_loss"),
                  train_accuracy=last.get("train_accuracy"), data_note=trainer.dataset.note)
    acc = result["accuracy"] if result["accuracy"] is not None else float("nan")
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out accuracy {acc:.3f}, {result['samples_per_s'] or 0:.0f} samples/s")
    return 0


def cnn_trainer(args: argparse.Namespace):
    """The CNN trainer of the options (each rank of a ``--gpus`` run makes its own)."""
    from explorer.core.families.cnn.trainer import CNNTrainer

    return CNNTrainer(cnn_config(args))


def cmd_snapshot_cnn(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, cnn_config)
