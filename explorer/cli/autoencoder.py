"""The autoencoder on the command line: ``train autoencoder|ae|dae``, ``snapshot autoencoder|ae|dae``.

    python -m explorer train autoencoder --noise gaussian --noise-level 0.3 --hidden 64 --epochs 20 --json
    python -m explorer train dae --noise masking --noise-level 0.5 --epochs 10
    python -m explorer snapshot dae --steps 300 --out ae.png
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


def add_ae_options(p: argparse.ArgumentParser, noise: str = "none") -> None:
    """Data, code size, corruption and optimiser options of the autoencoder; ``noise`` is the default corruption."""
    add_data_options(p)
    p.add_argument("--hidden", type=positive_int, default=64, help="code size (default 64)")
    p.add_argument("--tied", action="store_true", help="tied weights: the decoder uses W transposed")
    p.add_argument("--noise", default=noise, choices=("none", "gaussian", "masking", "salt_pepper"),
                   help=f"corruption of the input for a denoising autoencoder (default {noise})")
    p.add_argument("--noise-level", type=finite_float, default=0.3, help="noise std (gaussian) or fraction (default 0.3)")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=finite_float, default=0.9, help="momentum (default 0.9)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")


def ae_config(args: argparse.Namespace):
    """The autoencoder settings from the options; ValueError with a message when something is refused."""
    from explorer.core.families.autoencoder.trainer import AutoencoderConfig

    cfg = AutoencoderConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=args.hidden,
                            tied=args.tied, noise=args.noise, noise_level=args.noise_level, lr=args.lr,
                            momentum=args.momentum, batch_size=args.batch_size, device=args.device, seed=args.seed,
                            download=args.download)
    validate_options(cfg, args)
    return cfg


def add_train_parsers(fam) -> None:
    """``train autoencoder`` (alias ``ae``) and ``train dae`` on the ``train`` sub-parsers ``fam``."""
    for name, aliases, noise in (("autoencoder", ["ae"], "none"), ("dae", [], "gaussian")):
        p = fam.add_parser(name, aliases=aliases,
                           help="denoising autoencoder (gaussian noise by default)" if name == "dae"
                           else "autoencoder or denoising autoencoder (sigmoid units, squared loss)")
        add_ae_options(p, noise)
        add_run_options(p)
        add_spec_source(p)
        p.set_defaults(func=cmd_train_autoencoder)


def add_snapshot_parsers(sfam) -> None:
    """``snapshot autoencoder`` (alias ``ae``) and ``snapshot dae`` on the ``snapshot`` sub-parsers ``sfam``."""
    for name, aliases, text, noise in (
            ("autoencoder", ["ae"], "the autoencoder panel", "none"),
            ("dae", [], "the autoencoder panel, denoising (gaussian noise by default)", "gaussian")):
        p = sfam.add_parser(name, aliases=aliases, help=text)
        add_ae_options(p, noise=noise)
        add_snapshot_options(p)
        p.set_defaults(func=cmd_snapshot_autoencoder)


def cmd_train_autoencoder(args: argparse.Namespace) -> int:
    """Train; ``--json`` adds the corruption, ``loss`` (held-out), ``heldout_mse`` and ``heldout_loss_noisy``."""
    from explorer.core.families.autoencoder.trainer import AutoencoderTrainer, config_from_spec

    trainer = trainer_from_args(args, ae_config, AutoencoderTrainer, config_from_spec)
    cfg = trainer.config
    rc, result = run_training(trainer, args, ("heldout_loss", "held-out loss"))
    if rc:
        return rc
    last = result["history"][-1] if result["history"] else {}
    result.update(tied=cfg.tied, noise=cfg.noise, noise_level=cfg.noise_level, loss=last.get("heldout_loss"),
                  heldout_mse=last.get("heldout_mse"), heldout_loss_noisy=last.get("heldout_loss_noisy"))
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out loss {result['loss']:.3f} per example, {result['samples_per_s']:.0f} samples/s")
    return 0


def cmd_snapshot_autoencoder(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, ae_config)
