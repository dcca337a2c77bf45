"""The recurrent networks on the command line: ``train lstm|rnn``, ``snapshot lstm|rnn``.

    python -m explorer train lstm --task adding --length 50 --hidden 32 --epochs 5 --json
    python -m explorer train rnn --task recall --length 20
    python -m explorer train lstm --task text --text my_book.txt --length 64 --hidden 128
    python -m explorer snapshot lstm --task text --steps 300 --out lstm.png
"""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    UsageError,
    add_run_options,
    add_snapshot_options,
    add_spec_source,
    config_from_spec_file,
    device_name,
    finite_float,
    nonneg_int,
    positive_float,
    positive_int,
    render_snapshot_png,
    report,
    run_training,
    seed_number,
    spec_from_args,
    validate_options,
    whole_number,
)


def _float_at_least_zero(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def add_recurrent_options(p: argparse.ArgumentParser, model: str) -> None:
    """Task, size and optimiser options of an LSTM (``model`` "lstm") or a vanilla RNN ("rnn")."""
    from explorer.core.data.sequence_tasks import TASKS

    p.add_argument("--task", default="adding", choices=TASKS,
                   help="adding problem, delayed recall, sine/sawtooth forecasting or a character-level "
                        "language model (default adding)")
    p.add_argument("--length", "--T", "--lag", dest="length", type=whole_number, default=50,
                   help="T: steps per sequence, 2 to 2000 (adding, sine, sawtooth, text chunks), or the lag of "
                        "delayed recall, 0 to 2000 (default 50)")
    p.add_argument("--text", dest="text_file", help="a UTF-8 text file for --task text (default: Python's own "
                                                    "standard library sources)")
    p.add_argument("--hidden", type=positive_int, default=32, help="hidden units (default 32)")
    if model == "lstm":
        p.add_argument("--bias", action="store_true", help="learn gate biases (the lecture's cell has none)")
    else:
        p.add_argument("--bias", action="store_true", help="learn a bias in s_t = tanh(U x + W s + b)")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"), help="optimiser (default adam)")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--momentum", type=finite_float, default=0.9, help="momentum for sgd (default 0.9)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="mini-batch size (default 32)")
    p.add_argument("--clip", type=_float_at_least_zero, default=1.0,
                   help="clip the gradient norm at this value, 0 = off (default 1)")
    p.add_argument("--n-train", type=positive_int, default=4000,
                   help="generated training sequences (default 4000; text: all chunks of the text)")
    p.add_argument("--eval-samples", type=positive_int, default=1000, help="held-out sequences (default 1000)")
    p.add_argument("--compare-every", type=nonneg_int, default=None,
                   help="also train the other kind (RNN <-> LSTM) on the same batches, one update every N "
                        "steps, and report its held-out loss (default: off for train, 4 for snapshot)")
    p.add_argument("--temperature", type=_float_at_least_zero, default=1.0,
                   help="text: sampling temperature of the generated sample (default 1)")
    p.add_argument("--device", type=device_name, default="auto", help="cpu, cuda, mps or auto (default auto)")
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default 0)")


SHORTEST_LENGTH = {"recall": 0}
"""The least ``--length`` of a task: a sequence has 2 steps at least; delayed recall's is a lag, which may be 0."""


def check_length(args: argparse.Namespace, cls) -> None:
    """``--length`` within its task's range, one message for every value out of it (argparse, the setting's
    rule and the configuration's check said three different things, two of them that 0 was allowed)."""
    from explorer.core.engine.settings import rules

    lo, hi = SHORTEST_LENGTH.get(args.task, 2), int(rules(cls)["length"].hi or 0)
    if not lo <= args.length <= hi:
        what = "the lag between a symbol and its cue" if args.task == "recall" else "steps per sequence"
        raise UsageError(f"--length must be a whole number between {lo} and {hi} for --task {args.task} ({what}), "
                         f"got {args.length}")


def recurrent_config(args: argparse.Namespace):
    from explorer.core.families.recurrent.trainer import CONFIGS

    cls = CONFIGS[args.family]
    check_length(args, cls)
    compare_every = args.compare_every
    if compare_every is None:
        compare_every = 0 if args.command == "train" else cls.compare_every
    cfg = cls(task=args.task, length=args.length, text_file=args.text_file, hidden=args.hidden, bias=args.bias,
              optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size,
              clip=args.clip, n_train=args.n_train, eval_samples=args.eval_samples,
              compare_every=compare_every, temperature=args.temperature, device=args.device, seed=args.seed)
    validate_options(cfg, args)
    return cfg


RECURRENT_MODELS = (
    ("lstm", "LSTM (the lecture's gates) on a sequence task: adding, recall, sine, sawtooth, text",
     "the LSTM panel (gates over time)"),
    ("rnn", "vanilla RNN s_t = tanh(U x_t + W s_(t-1)) trained by BPTT on a sequence task", "the vanilla RNN panel"),
)
"""Each recurrent model's name, its ``train`` help and its ``snapshot`` help."""


def add_train_parsers(fam) -> None:
    """``train lstm`` and ``train rnn`` on the ``train`` sub-parsers ``fam``."""
    for name, train_help, _ in RECURRENT_MODELS:
        p = fam.add_parser(name, help=train_help)
        add_recurrent_options(p, name)
        add_run_options(p)
        add_spec_source(p)
        p.set_defaults(func=cmd_train_recurrent)


def add_snapshot_parsers(sfam) -> None:
    """``snapshot lstm`` and ``snapshot rnn`` on the ``snapshot`` sub-parsers ``sfam``."""
    for name, _, snapshot_help in RECURRENT_MODELS:
        p = sfam.add_parser(name, help=snapshot_help)
        add_recurrent_options(p, name)
        add_snapshot_options(p)
        p.set_defaults(func=cmd_snapshot_recurrent)


def cmd_train_recurrent(args: argparse.Namespace) -> int:
    """Train an LSTM or a vanilla RNN headless; ``loss`` in the JSON is the held-out loss."""
    from explorer.core.families.recurrent.trainer import RecurrentTrainer, config_from_spec

    cfg = recurrent_config(args)
    spec = spec_from_args(args)
    if spec is not None:
        if spec.family != args.family:
            raise ValueError(f"this is a {spec.family} network; train it with: explorer train {spec.family}")
        cfg = config_from_spec_file(config_from_spec, spec, cfg, args)
    trainer = RecurrentTrainer(cfg)
    rc, result = run_training(trainer, args, ("heldout_loss", "held-out loss"))
    if rc:
        return rc
    last: dict[str, Any] = result["history"][-1] if result["history"] else {}
    data = trainer.dataset
    result.update(task=data.name, length=cfg.length, model=cfg.model, bias=cfg.bias, optimizer=cfg.optimizer,
                  lr=cfg.lr, loss=last.get("heldout_loss"), train_loss=last.get("train_loss"),
                  baseline=data.baseline, loss_kind="mse" if data.kind == "regression" else "cross-entropy (nats)")
    if "heldout_accuracy" in last:
        result["accuracy"] = last["heldout_accuracy"]
    if "compare_heldout_loss" in last:
        result["compare_model"] = "rnn" if cfg.model == "lstm" else "lstm"
        result["compare_loss"] = last["compare_heldout_loss"]
        result["compare_updates"] = trainer.compare_steps
    if data.is_text:
        result["text_source"] = data.source
    acc = f", held-out accuracy {result['accuracy']:.3f}" if "accuracy" in result else ""
    report(result, args, f"trained {trainer.describe()} for {trainer.epoch} epochs on {trainer.device}: "
                         f"held-out loss {result['loss']:.4f} (baseline {data.baseline:.4f}){acc}, "
                         f"{result['samples_per_s']:.0f} samples/s")
    return 0


def cmd_snapshot_recurrent(args: argparse.Namespace) -> int:
    return render_snapshot_png(args, recurrent_config)
