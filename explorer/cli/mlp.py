"""Deep fully connected networks on the command line: ``train mlp`` (vanishing gradients, optional layerwise
pretraining), ``train dbn`` (stacked RBMs, then sampled), ``snapshot gradients|pretrain``.

    python -m explorer train mlp --init random --epochs 5 --json
    python -m explorer train dbn --hidden 100,64 --epochs 5 --samples-out dreams.png
    python -m explorer snapshot pretrain --steps 300 --out deep.png
"""

from __future__ import annotations

import argparse

from explorer.cli.common import (
    UsageError,
    add_data_options,
    add_run_options,
    add_snapshot_options,
    add_spec_source,
    finite_float,
    load_data,
    positive_float,
    positive_int,
    render_snapshot_png,
    report,
    run_training,
    trainer_from_args,
    validate_options,
)


def add_mlp_options(p: argparse.ArgumentParser, init: str = "random") -> None:
    """Data, layer sizes, start and optimiser options of the deep classifier; ``init`` is the default start."""
    add_data_options(p)
    p.add_argument("--hidden", default="64,64,64,64,64,64", help="hidden layer sizes (default 64 x 6)")
    p.add_argument("--init", default=init, choices=("random", "rbm", "ae", "relu-he"),
                   help="start: small random sigmoid, RBM- or AE-pretrained sigmoid, or ReLU with He init")
    p.add_argument("--pretrain-epochs", type=positive_int, default=5, help="pretraining epochs per layer")
    p.add_argument("--lr", type=positive_float, default=0.5, help="fine-tuning learning rate (default 0.5)")
    p.add_argument("--momentum", type=finite_float, default=0.0, help="momentum (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")


def mlp_config(args: argparse.Namespace):
    """The deep classifier's settings from the options; UsageError for a malformed ``--hidden``, ValueError
    with a message when a setting is refused."""
    from explorer.core.families.deep.trainer import MLPConfig

    try:
        hidden = tuple(int(v) for v in args.hidden.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--hidden must be sizes separated by commas, like 64,64,64; got {args.hidden!r}") from None
    if not hidden:
        raise UsageError(f"--hidden must name at least one layer size, like 64,64,64; got {args.hidden!r}")
    cfg = MLPConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=hidden,
                    init=args.init, pretrain_epochs=args.pretrain_epochs, lr=args.lr, momentum=args.momentum,
                    batch_size=args.batch_size, device=args.device, seed=args.seed, download=args.download)
    validate_options(cfg, args)
    return cfg


def add_train_parsers(fam) -> None:
    """``train dbn`` and ``train mlp`` on the ``train`` sub-parsers ``fam``."""
    dbn = fam.add_parser("dbn", help="deep belief net: RBMs stacked by greedy layerwise training, then sampled")
    add_data_options(dbn)
    dbn.add_argument("--hidden", default="100,64", help="hidden layer sizes, bottom first (default 100,64)")
    dbn.add_argument("--lr", type=positive_float, default=0.1, help="CD-1 learning rate (default 0.1)")
    dbn.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")
    dbn.add_argument("--samples", type=positive_int, default=64, help="samples to draw from the DBN (default 64)")
    dbn.add_argument("--gibbs-sweeps", type=positive_int, default=200,
                     help="Gibbs sweeps in the top RBM before a sample goes down the stack (default 200)")
    dbn.add_argument("--samples-out", help="write the samples as a PNG grid here")
    add_run_options(dbn)
    dbn.set_defaults(epochs=5, func=cmd_train_dbn)
    for action in dbn._actions:  # argparse has no public way to reword an option's help
        if action.dest == "epochs":
            action.help = "CD-1 epochs for each layer (default 5)"

    mlp = fam.add_parser("mlp", help="deep classifier: vanishing gradient statistics, optional layerwise pretraining")
    add_mlp_options(mlp)
    add_run_options(mlp)
    add_spec_source(mlp)
    mlp.set_defaults(func=cmd_train_mlp)


def add_snapshot_parsers(sfam) -> None:
    """``snapshot gradients`` (alias ``mlp``) and ``snapshot pretrain`` on the ``snapshot`` sub-parsers ``sfam``."""
    for name, aliases, text, init in (("gradients", ["mlp"], "the deep network panel (vanishing gradient)", "random"),
                                      ("pretrain", [], "the deep network panel with RBM pretraining", "rbm")):
        p = sfam.add_parser(name, aliases=aliases, help=text)
        add_mlp_options(p, init=init)
        add_snapshot_options(p)
        p.set_defaults(func=cmd_snapshot_mlp)


def cmd_train_mlp(args: argparse.Namespace) -> int:
    """Train; ``--json`` adds ``init``, ``accuracy`` (held-out) and ``grad_norms`` (per epoch, per layer)."""
    from explorer.core.families.deep.trainer import MLPTrainer, config_from_spec

    trainer = trainer_from_args(args, mlp_config, MLPTrainer, config_from_spec)
    cfg = trainer.config
    # the epoch budget counts fine-tuning epochs: pretraining epochs come on top
    args.epochs = args.epochs + (trainer.n_pretrain_stages * cfg.pretrain_epochs)
    rc, result = run_training(trainer, args, ("heldout_accuracy", "held-out accuracy"))
    if rc:
        return rc
    history = result["history"]
    fine = [h for h in history if "heldout_accuracy" in h]
    n = trainer.n_layers
    result.update(init=cfg.init, hidden=list(cfg.hidden),
                  accuracy=fine[-1]["heldout_accuracy"] if fine else None,
                  grad_norms=[[h[f"train_grad_norm_{layer}"] for layer in range(1, n + 1)]
                              for h in fine if f"train_grad_norm_{n}" in h])
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out accuracy {result['accuracy']:.3f}, {result['samples_per_s']:.0f} samples/s")
    return 0


def image_grid(images, image_shape, cols: int = 8, zoom: int = 4):
    """Flat images in [0, 1] as one uint8 grid picture (1-pixel gaps, each pixel ``zoom`` x ``zoom``)."""
    import numpy as np

    h, w = int(image_shape[0]), int(image_shape[1])
    imgs = np.clip(np.asarray(images, dtype=np.float32).reshape(-1, h, w), 0, 1)
    rows = -(-len(imgs) // cols)
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.float32)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = im
    return (np.kron(grid, np.ones((zoom, zoom), dtype=np.float32)) * 255).round().astype(np.uint8)


def cmd_train_dbn(args: argparse.Namespace) -> int:
    """Greedy layerwise training of stacked RBMs (layer k on the codes of layer k-1), then generative
    sampling: Gibbs sweeps in the top RBM, then one pass down through the layers with p(v|h)."""
    from explorer.core.atomic import atomic_write_bytes
    from explorer.core.families.deep.trainer import MLPTrainer
    from explorer.core.limits import FLOAT_BYTES, check_memory

    per_layer = args.epochs
    ns = argparse.Namespace(**{**vars(args), "init": "rbm", "pretrain_epochs": per_layer, "momentum": 0.0})
    cfg = mlp_config(ns)
    cfg.pretrain_lr = args.lr
    cfg.validate()
    trainer = MLPTrainer(cfg, dataset=load_data(cfg, quiet=args.quiet))
    # the samples' chains through every layer, their probabilities and the picture: before any training
    check_memory(f"--samples {args.samples:,}",
                 4 * FLOAT_BYTES * args.samples * (trainer.dataset.n_visible + sum(cfg.hidden)))
    n_layers = trainer.n_pretrain_stages
    args.epochs = n_layers * per_layer  # the run ends where fine-tuning would begin: a DBN is not fine-tuned
    rc, result = run_training(trainer, args, ("pretrain_heldout_error", "held-out recon"))
    if rc:
        return rc
    history = result["history"]
    sizes = [trainer.dataset.n_visible, *cfg.hidden]
    layers = []
    for k in range(n_layers):
        rows = history[k * per_layer:(k + 1) * per_layer]
        layers.append({"layer": k + 1, "n_in": sizes[k], "hidden": sizes[k + 1],
                       "heldout_recon_error": rows[-1].get("pretrain_heldout_error") if rows else None,
                       "first_epoch_heldout_recon_error": rows[0].get("pretrain_heldout_error") if rows else None})
    samples = trainer.dbn_sample(n=args.samples, sweeps=args.gibbs_sweeps)
    result.update(family="dbn", hidden=list(cfg.hidden), epochs_per_layer=per_layer, layers=layers,
                  recon_error=layers[-1]["heldout_recon_error"], gibbs_sweeps=args.gibbs_sweeps,
                  n_samples=args.samples)
    if args.samples_out and samples is not None:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(image_grid(samples.cpu().numpy(), trainer.dataset.image_shape)).save(buf, format="PNG")
        atomic_write_bytes(args.samples_out, buf.getvalue())
        result["samples_out"] = args.samples_out
    errors = ", ".join(f"layer {d['layer']} {d['heldout_recon_error'] or float('nan'):.4f}" for d in layers)
    report(result, args, f"trained a deep belief net {'-'.join(str(v) for v in sizes)} layer by layer "
                         f"({per_layer} epochs each) on {trainer.device}: held-out reconstruction error {errors}"
                         + (f"; {args.samples} samples written to {args.samples_out}" if args.samples_out else ""))
    return 0


def cmd_snapshot_mlp(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, mlp_config)
