"""The restricted Boltzmann machine on the command line: ``train rbm``, ``snapshot rbm``; its options are also
those of ``gui``.

    python -m explorer train rbm --dataset digits --hidden 100 --k 1 --lr 0.1 --epochs 10 --json
    python -m explorer snapshot rbm --steps 1500 --out panel.png
"""

from __future__ import annotations

import argparse

from explorer.cli.common import (
    add_data_options,
    add_run_options,
    add_snapshot_options,
    add_spec_source,
    finite_float,
    positive_float,
    positive_int,
    render_snapshot_png,
    report,
    run_training,
    trainer_from_args,
    validate_options,
)


def add_rbm_options(p: argparse.ArgumentParser) -> None:
    """Data, size and contrastive-divergence options of the RBM (train, snapshot and the window)."""
    add_data_options(p)
    p.add_argument("--hidden", type=positive_int, default=100, help="hidden units (default 100)")
    p.add_argument("--k", type=positive_int, default=1, help="Gibbs steps of CD-k (default 1)")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate gamma (default 0.1)")
    p.add_argument("--momentum", type=finite_float, default=0.0, help="momentum (option beyond the lecture; default 0)")
    p.add_argument("--weight-decay", type=finite_float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--persistent", action="store_true", help="persistent CD (PCD) instead of CD-k")
    p.add_argument("--binarize", default="sample", choices=("sample", "threshold"),
                   help="how grey levels become binary visible units (default: sample)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")


def rbm_config(args: argparse.Namespace):
    """The RBM settings from the options; ValueError with a message when something is refused."""
    from explorer.core.families.rbm.trainer import RBMConfig

    cfg = RBMConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=args.hidden,
                    k=args.k, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                    persistent=args.persistent, binarize=args.binarize, batch_size=args.batch_size,
                    device=args.device, seed=args.seed, download=args.download)
    validate_options(cfg, args)
    return cfg


def add_train_parser(fam) -> None:
    """``train rbm`` on the ``train`` sub-parsers ``fam``."""
    p = fam.add_parser("rbm", help="restricted Boltzmann machine trained by contrastive divergence")
    add_rbm_options(p)
    add_run_options(p)
    add_spec_source(p)
    p.set_defaults(func=cmd_train_rbm)


def add_snapshot_parser(sfam) -> None:
    """``snapshot rbm`` on the ``snapshot`` sub-parsers ``sfam``."""
    p = sfam.add_parser("rbm", help="the RBM panel")
    add_rbm_options(p)
    add_snapshot_options(p)
    p.set_defaults(func=cmd_snapshot_rbm)


def cmd_train_rbm(args: argparse.Namespace) -> int:
    """Train; ``--json`` adds ``k``, ``recon_error`` (held-out) and ``heldout_pll`` to the common fields."""
    from explorer.core.families.rbm.trainer import RBMTrainer, config_from_spec

    trainer = trainer_from_args(args, rbm_config, RBMTrainer, config_from_spec)
    rc, result = run_training(trainer, args, ("heldout_recon_error", "held-out recon"))
    if rc:
        return rc
    last = result["history"][-1] if result["history"] else {}
    result.update(k=trainer.config.k, recon_error=last.get("heldout_recon_error"), heldout_pll=last.get("heldout_pll"))
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out reconstruction error {result['recon_error']:.4f}, "
                         f"{result['samples_per_s']:.0f} samples/s")
    return 0


def cmd_snapshot_rbm(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, rbm_config)
