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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

from explorer import __version__

DATASETS = ("digits", "bars", "mnist", "fashion-mnist")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise UsageError(message)


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", choices=DATASETS, help="training data (default: digits)")
    p.add_argument("--data-dir", help="folder with MNIST/Fashion-MNIST IDX files (.gz or raw)")
    p.add_argument("--download", action="store_true", help="download MNIST/Fashion-MNIST into the user cache if missing")
    p.add_argument("--upscale", type=_positive_int, default=1, help="enlarge images by this factor (1-4)")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=_positive_int, default=10, help="passes over the training set (default 10)")
    p.add_argument("--out", help="write a run folder here (settings JSON, safetensors weights, metrics CSV)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_spec_source(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--spec", help="a network file from the builder (its layer sizes, data size and "
                                    "hyper-parameters override the options above)")
    src.add_argument("--preset", help="a preset network by name (see: explorer spec presets)")


def _add_rbm_options(p: argparse.ArgumentParser) -> None:
    _add_data_options(p)
    p.add_argument("--hidden", type=_positive_int, default=100, help="hidden units (default 100)")
    p.add_argument("--k", type=_positive_int, default=1, help="Gibbs steps of CD-k (default 1)")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate gamma (default 0.1)")
    p.add_argument("--momentum", type=float, default=0.0, help="momentum (option beyond the lecture; default 0)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--persistent", action="store_true", help="persistent CD (PCD) instead of CD-k")
    p.add_argument("--binarize", default="sample", choices=("sample", "threshold"),
                   help="how grey levels become binary visible units (default: sample)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="mini-batch size (default 32)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="explorer", description="Network Explorer: watch neural networks learn, live.")
    parser.add_argument("--version", action="version", version=f"Network Explorer {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    gui = sub.add_parser("gui", help="open the app (the default)")
    gui.add_argument("--run", help="open a saved run folder")
    gui.add_argument("--start", action="store_true", help="start training as soon as the window opens")
    gui.add_argument("--builder", nargs="?", const="lenet5", metavar="PRESET|FILE",
                     help="also open the architecture builder (on a preset or a spec file)")
    _add_rbm_options(gui)

    train = sub.add_parser("train", help="train a model headless")
    fam = train.add_subparsers(dest="family", parser_class=_Parser, required=True)
    rbm = fam.add_parser("rbm", help="restricted Boltzmann machine trained by contrastive divergence")
    _add_rbm_options(rbm)
    _add_run_options(rbm)
    _add_spec_source(rbm)

    for name, aliases, noise in (("autoencoder", ["ae"], "none"), ("dae", [], "gaussian")):
        ae = fam.add_parser(name, aliases=aliases,
                            help="denoising autoencoder (gaussian noise by default)" if name == "dae"
                            else "autoencoder or denoising autoencoder (sigmoid units, squared loss)")
        _add_ae_options(ae, noise)
        _add_run_options(ae)
        _add_spec_source(ae)

    dbn = fam.add_parser("dbn", help="deep belief net: RBMs stacked by greedy layerwise training, then sampled")
    _add_data_options(dbn)
    dbn.add_argument("--hidden", default="100,64", help="hidden layer sizes, bottom first (default 100,64)")
    dbn.add_argument("--lr", type=_positive_float, default=0.1, help="CD-1 learning rate (default 0.1)")
    dbn.add_argument("--batch-size", type=_positive_int, default=32, help="mini-batch size (default 32)")
    dbn.add_argument("--samples", type=_positive_int, default=64, help="samples to draw from the DBN (default 64)")
    dbn.add_argument("--gibbs-sweeps", type=_positive_int, default=200,
                     help="Gibbs sweeps in the top RBM before a sample goes down the stack (default 200)")
    dbn.add_argument("--samples-out", help="write the samples as a PNG grid here")
    _add_run_options(dbn)
    dbn.set_defaults(epochs=5)
    for action in dbn._actions:
        if action.dest == "epochs":
            action.help = "CD-1 epochs for each layer (default 5)"

    mlp = fam.add_parser("mlp", help="deep classifier: vanishing gradient statistics, optional layerwise pretraining")
    _add_mlp_options(mlp)
    _add_run_options(mlp)
    _add_spec_source(mlp)

    from explorer.fcn_cli import add_fcn_snapshot_parsers, add_fcn_train_parser

    add_fcn_train_parser(fam)

    from explorer.cnn_cli import add_cnn_snapshot_parser, add_cnn_train_parser

    add_cnn_train_parser(fam)

    from explorer.recurrent_cli import add_recurrent_options

    for name, text in (("lstm", "LSTM (the lecture's gates) on a sequence task: adding, recall, sine, sawtooth, text"),
                       ("rnn", "vanilla RNN s_t = tanh(U x_t + W s_(t-1)) trained by BPTT on a sequence task")):
        rec = fam.add_parser(name, help=text)
        add_recurrent_options(rec, name)
        _add_run_options(rec)
        _add_spec_source(rec)

    from explorer.spec_cli import add_spec_commands

    add_spec_commands(sub)

    from explorer.export_cli import add_export_parser

    add_export_parser(sub)

    insp = sub.add_parser("inspect", help="what a run folder, weights file or network file holds")
    insp.add_argument("path", help="a run folder, a .safetensors file or a network .json file")

    snap = sub.add_parser("snapshot", help="train N steps and render a panel to PNG, no display needed")
    sfam = snap.add_subparsers(dest="family", parser_class=_Parser, required=True)
    panels = [("rbm", [], "the RBM panel", _add_rbm_options),
              ("autoencoder", ["ae"], "the autoencoder panel", _add_ae_options),
              ("dae", [], "the autoencoder panel, denoising (gaussian noise by default)",
               lambda p: _add_ae_options(p, noise="gaussian")),
              ("gradients", ["mlp"], "the deep network panel (vanishing gradient)", _add_mlp_options),
              ("pretrain", [], "the deep network panel with RBM pretraining",
               lambda p: _add_mlp_options(p, init="rbm"))]
    panels += [("lstm", [], "the LSTM panel (gates over time)", lambda p: add_recurrent_options(p, "lstm")),
               ("rnn", [], "the vanilla RNN panel", lambda p: add_recurrent_options(p, "rnn"))]
    for name, aliases, text, add_options in panels:
        sp = sfam.add_parser(name, aliases=aliases, help=text)
        add_options(sp)
        sp.add_argument("--steps", type=_nonneg_int, default=300, help="training steps before the picture (default 300)")
        sp.add_argument("--out", required=True, help="PNG file to write")
        sp.add_argument("--size", default="1600x1000", help="window size WxH (default 1600x1000)")
    add_fcn_snapshot_parsers(sfam)
    add_cnn_snapshot_parser(sfam)
    return parser


def _add_ae_options(ae: argparse.ArgumentParser, noise: str = "none") -> None:
    _add_data_options(ae)
    ae.add_argument("--hidden", type=_positive_int, default=64, help="code size (default 64)")
    ae.add_argument("--tied", action="store_true", help="tied weights: the decoder uses W transposed")
    ae.add_argument("--noise", default=noise, choices=("none", "gaussian", "masking", "salt_pepper"),
                    help=f"corruption of the input for a denoising autoencoder (default {noise})")
    ae.add_argument("--noise-level", type=float, default=0.3, help="noise std (gaussian) or fraction (default 0.3)")
    ae.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate (default 0.1)")
    ae.add_argument("--momentum", type=float, default=0.9, help="momentum (default 0.9)")
    ae.add_argument("--batch-size", type=_positive_int, default=32, help="mini-batch size (default 32)")


def _add_mlp_options(mlp: argparse.ArgumentParser, init: str = "random") -> None:
    _add_data_options(mlp)
    mlp.add_argument("--hidden", default="64,64,64,64,64,64", help="hidden layer sizes (default 64 x 6)")
    mlp.add_argument("--init", default=init, choices=("random", "rbm", "ae", "relu-he"),
                     help="start: small random sigmoid, RBM- or AE-pretrained sigmoid, or ReLU with He init")
    mlp.add_argument("--pretrain-epochs", type=_positive_int, default=5, help="pretraining epochs per layer")
    mlp.add_argument("--lr", type=_positive_float, default=0.5, help="fine-tuning learning rate (default 0.5)")
    mlp.add_argument("--momentum", type=float, default=0.0, help="momentum (default 0)")
    mlp.add_argument("--batch-size", type=_positive_int, default=32, help="mini-batch size (default 32)")


def _ae_config(args: argparse.Namespace):
    from explorer.core.families.autoencoder.trainer import AutoencoderConfig

    cfg = AutoencoderConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=args.hidden,
                            tied=args.tied, noise=args.noise, noise_level=args.noise_level, lr=args.lr,
                            momentum=args.momentum, batch_size=args.batch_size, device=args.device, seed=args.seed,
                            download=args.download)
    cfg.validate()
    return cfg


def _mlp_config(args: argparse.Namespace):
    from explorer.core.families.deep.trainer import MLPConfig

    try:
        hidden = tuple(int(v) for v in args.hidden.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--hidden must be sizes separated by commas, like 64,64,64; got {args.hidden!r}") from None
    cfg = MLPConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=hidden,
                    init=args.init, pretrain_epochs=args.pretrain_epochs, lr=args.lr, momentum=args.momentum,
                    batch_size=args.batch_size, device=args.device, seed=args.seed, download=args.download)
    cfg.validate()
    return cfg


def _rbm_config(args: argparse.Namespace):
    from explorer.core.families.rbm.trainer import RBMConfig

    cfg = RBMConfig(dataset=args.dataset, data_dir=args.data_dir, upscale=args.upscale, hidden=args.hidden,
                    k=args.k, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                    persistent=args.persistent, binarize=args.binarize, batch_size=args.batch_size,
                    device=args.device, seed=args.seed, download=args.download)
    cfg.validate()
    return cfg


class _Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self._last = total, enabled, 0.0

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = min(1.0, done / self.total) if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {done}/{self.total} steps {extra}  ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _load_data(cfg, quiet: bool):
    """Load the configured data set; a download shows its progress on stderr."""
    from explorer.core.data.datasets import load_dataset

    def progress(done: int, total: int) -> None:
        if not quiet:
            size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
            sys.stderr.write(f"\rdownloading {cfg.dataset}: {size}   ")
            sys.stderr.flush()

    return load_dataset(cfg.dataset, cfg.data_dir, upscale=cfg.upscale, bars_size=cfg.bars_size,
                        seed=cfg.seed, download=cfg.download, progress=progress)


def _run_training(trainer, args: argparse.Namespace, progress_metric: tuple[str, str]) -> tuple[int, dict[str, Any]]:
    """Train ``args.epochs`` epochs on the engine's thread with a progress bar; the common JSON fields."""
    from explorer.core.engine.session import TrainingSession
    from explorer.core.persist.runfolder import save_run

    session = TrainingSession(trainer, epochs=args.epochs, eval_fraction=None)  # every epoch is evaluated
    bar = _Progress(trainer.steps_per_epoch * args.epochs, enabled=not args.quiet)
    key, label = progress_metric
    t0 = time.perf_counter()
    session.start()
    try:
        while not session.wait(timeout=0.1):
            ev = session.metrics.evals
            extra = f"epoch {trainer.epoch}/{args.epochs}"
            if ev:
                extra += f"  {label} {ev[-1].get(key, float('nan')):.4f}"
            bar.update(trainer.step, extra)
        bar.update(trainer.step, f"epoch {trainer.epoch}/{args.epochs}", force=True)
    finally:
        bar.close()
        session.stop()
    if session.error:
        print(f"explorer: training failed: {session.error}", file=sys.stderr)
        return 1, {}
    history = session.history()
    train_seconds = sum(h.get("seconds", 0.0) for h in history)
    result: dict[str, Any] = {
        "family": trainer.family,
        "device": str(trainer.device),
        "dataset": trainer.dataset.name,
        "n_visible": trainer.dataset.n_visible,
        "hidden": getattr(trainer.config, "hidden", None),
        "batch_size": trainer.config.batch_size,
        "epochs": trainer.epoch,
        "steps": trainer.step,
        "samples_per_s": trainer.step * trainer.batch_size / train_seconds if train_seconds > 0 else None,
        "wall_seconds": time.perf_counter() - t0,
        "history": history,
    }
    if args.out:
        result["out"] = str(save_run(session, args.out))
    return 0, result


def _spec_from_args(args: argparse.Namespace):
    from explorer.core.spec.network import load_preset, load_spec

    if args.spec:
        return load_spec(args.spec)
    if args.preset:
        return load_preset(args.preset)
    return None


def _trainer_from_args(args: argparse.Namespace, make_config, trainer_cls, config_from_spec):
    """The family's settings from the options, overridden by ``--spec``/``--preset``; data loaded with progress."""
    cfg = make_config(args)
    spec = _spec_from_args(args)
    if spec is not None:
        cfg = config_from_spec(spec, cfg)
    return trainer_cls(cfg, dataset=_load_data(cfg, quiet=args.quiet))


def _report(result: dict[str, Any], args: argparse.Namespace, text: str) -> None:
    if args.json:
        print(json.dumps(result))
    else:
        print(text + (f"; saved to {args.out}" if args.out else ""))


def cmd_train_rbm(args: argparse.Namespace) -> int:
    from explorer.core.families.rbm.trainer import RBMTrainer, config_from_spec

    trainer = _trainer_from_args(args, _rbm_config, RBMTrainer, config_from_spec)
    rc, result = _run_training(trainer, args, ("heldout_recon_error", "held-out recon"))
    if rc:
        return rc
    last = result["history"][-1] if result["history"] else {}
    result.update(k=trainer.config.k, recon_error=last.get("heldout_recon_error"), heldout_pll=last.get("heldout_pll"))
    _report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                          f"held-out reconstruction error {result['recon_error']:.4f}, "
                          f"{result['samples_per_s']:.0f} samples/s")
    return 0


def cmd_train_autoencoder(args: argparse.Namespace) -> int:
    from explorer.core.families.autoencoder.trainer import AutoencoderTrainer, config_from_spec

    trainer = _trainer_from_args(args, _ae_config, AutoencoderTrainer, config_from_spec)
    cfg = trainer.config
    rc, result = _run_training(trainer, args, ("heldout_loss", "held-out loss"))
    if rc:
        return rc
    last = result["history"][-1] if result["history"] else {}
    result.update(tied=cfg.tied, noise=cfg.noise, noise_level=cfg.noise_level, loss=last.get("heldout_loss"),
                  heldout_mse=last.get("heldout_mse"), heldout_loss_noisy=last.get("heldout_loss_noisy"))
    _report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                          f"held-out loss {result['loss']:.3f} per example, {result['samples_per_s']:.0f} samples/s")
    return 0


def cmd_train_mlp(args: argparse.Namespace) -> int:
    from explorer.core.families.deep.trainer import MLPTrainer, config_from_spec

    trainer = _trainer_from_args(args, _mlp_config, MLPTrainer, config_from_spec)
    cfg = trainer.config
    # the epoch budget counts fine-tuning epochs: pretraining epochs come on top
    args.epochs = args.epochs + (trainer.n_pretrain_stages * cfg.pretrain_epochs)
    rc, result = _run_training(trainer, args, ("heldout_accuracy", "held-out accuracy"))
    if rc:
        return rc
    history = result["history"]
    fine = [h for h in history if "heldout_accuracy" in h]
    n = trainer.n_layers
    result.update(init=cfg.init, hidden=list(cfg.hidden),
                  accuracy=fine[-1]["heldout_accuracy"] if fine else None,
                  grad_norms=[[h[f"train_grad_norm_{l}"] for l in range(1, n + 1)]
                              for h in fine if f"train_grad_norm_{n}" in h])
    _report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                          f"held-out accuracy {result['accuracy']:.3f}, {result['samples_per_s']:.0f} samples/s")
    return 0


def _image_grid(images, image_shape, cols: int = 8, zoom: int = 4):
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
    from explorer.core.persist.atomic import atomic_write_bytes
    from explorer.core.families.deep.trainer import MLPTrainer

    per_layer = args.epochs
    args.hidden = args.hidden or "100,64"
    ns = argparse.Namespace(**{**vars(args), "init": "rbm", "pretrain_epochs": per_layer, "momentum": 0.0})
    cfg = _mlp_config(ns)
    cfg.pretrain_lr = args.lr
    cfg.validate()
    trainer = MLPTrainer(cfg, dataset=_load_data(cfg, quiet=args.quiet))
    n_layers = trainer.n_pretrain_stages
    args.epochs = n_layers * per_layer  # the run ends where fine-tuning would begin: a DBN is not fine-tuned
    rc, result = _run_training(trainer, args, ("pretrain_heldout_error", "held-out recon"))
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
        Image.fromarray(_image_grid(samples.cpu().numpy(), trainer.dataset.image_shape)).save(buf, format="PNG")
        atomic_write_bytes(args.samples_out, buf.getvalue())
        result["samples_out"] = args.samples_out
    errors = ", ".join(f"layer {d['layer']} {d['heldout_recon_error'] or float('nan'):.4f}" for d in layers)
    _report(result, args, f"trained a deep belief net {'-'.join(str(v) for v in sizes)} layer by layer "
                          f"({per_layer} epochs each) on {trainer.device}: held-out reconstruction error {errors}"
                          + (f"; {args.samples} samples written to {args.samples_out}" if args.samples_out else ""))
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 1600x1000, got {args.size!r}") from None
    from explorer.gui.snapshot import render_snapshot

    if args.family in ("lstm", "rnn"):
        from explorer.recurrent_cli import recurrent_config

        path = render_snapshot(recurrent_config(args), steps=args.steps, out=args.out, size=(w, h))
        print(f"wrote {path}")
        return 0
    if args.family == "cnn":
        from explorer.cnn_cli import cnn_config

        path = render_snapshot(cnn_config(args), steps=args.steps, out=args.out, size=(w, h))
        print(f"wrote {path}")
        return 0
    from explorer.fcn_cli import FCN_SNAPSHOTS, snapshot_config

    family = {"rbm": "rbm", "autoencoder": "ae", "ae": "ae", "dae": "ae"}.get(args.family, "mlp")
    if args.family in FCN_SNAPSHOTS:
        config = snapshot_config(args)
    else:
        config = {"rbm": _rbm_config, "ae": _ae_config, "mlp": _mlp_config}[family](args)
    path = render_snapshot(config, steps=args.steps, out=args.out, size=(w, h))
    print(f"wrote {path}")
    return 0


def cmd_gui(args: argparse.Namespace | None) -> int:
    from explorer.gui.app import run_app

    config = _rbm_config(args) if args is not None and args.command == "gui" else None
    run = getattr(args, "run", None) if args is not None else None
    return run_app(config=config, run_dir=run, start=bool(getattr(args, "start", False)),
                   builder=getattr(args, "builder", None))


def main(argv: Sequence[str] | None = None) -> int:
    from explorer.logs import configure_logging; configure_logging(role="cli")  # noqa: E702 (one line)
    if not (sys.argv[1:] if argv is None else argv):
        # the plain launch: straight to the window, without the parser (its sub-commands import torch,
        # which the start-up window loads on a thread while it is already on screen; see gui/startup.py)
        return cmd_gui(None)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            return cmd_gui(None)
        if args.command == "gui":
            return cmd_gui(args)
        if args.command == "train" and args.family in ("lstm", "rnn"):
            from explorer.recurrent_cli import cmd_train_recurrent

            return cmd_train_recurrent(args)
        if args.command == "train" and args.family == "cnn":
            from explorer.cnn_cli import cmd_train_cnn

            return cmd_train_cnn(args)
        if args.command == "train" and args.family == "fcn":
            from explorer.fcn_cli import cmd_train_fcn

            return cmd_train_fcn(args)
        if args.command == "train":
            return {"autoencoder": cmd_train_autoencoder, "ae": cmd_train_autoencoder, "dae": cmd_train_autoencoder,
                    "mlp": cmd_train_mlp, "dbn": cmd_train_dbn}.get(args.family, cmd_train_rbm)(args)
        if args.command == "snapshot":
            return cmd_snapshot(args)
        if args.command == "export":
            from explorer.export_cli import cmd_export

            return cmd_export(args)
        if args.command == "inspect":
            from explorer.core.persist.inspect import inspect_path

            print(inspect_path(args.path))
            return 0
        if args.command == "spec":
            from explorer.spec_cli import run_spec_command

            return run_spec_command(args)
        raise UsageError(f"unknown command {args.command!r}")
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


if __name__ == "__main__":
    sys.exit(main())
