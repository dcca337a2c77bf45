"""The ``snapshot`` command: train N steps and render a panel to PNG, no display needed. Its families add
themselves to the sub-parsers this module makes (see their modules); the rendering is
``common.render_snapshot_png``."""

from __future__ import annotations

from explorer.cli.common import OneLineParser


def add_snapshot_command(sub):
    """``snapshot`` on the top-level sub-parsers ``sub``; returns its sub-parsers, one per panel."""
    snap = sub.add_parser("snapshot", help="train N steps and render a panel to PNG, no display needed")
    return snap.add_subparsers(dest="family", parser_class=OneLineParser, required=True)
