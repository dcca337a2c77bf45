"""The ``train`` command: train a model headless. Its families (``rbm``, ``cnn``, ...) add themselves to the
sub-parsers this module makes; see their modules."""

from __future__ import annotations

from explorer.cli.common import OneLineParser


def add_train_command(sub):
    """``train`` on the top-level sub-parsers ``sub``; returns its sub-parsers, one per family."""
    train = sub.add_parser("train", help="train a model headless")
    return train.add_subparsers(dest="family", parser_class=OneLineParser, required=True)
