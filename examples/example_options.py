"""The example scripts' option types: a bad value stops a script before it starts, with argparse's one line
naming the option and the fault, and exit status 2 (never a traceback from deep in training).

The numbers are checked by the app's own command-line types; the address by the check ``explorer.watch``
applies to it. Kept apart so that each script shows its training loop and ``explorer.watch``, not argument
checking.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from explorer.cli.common import int_at_least, int_between, positive_float  # noqa: F401 - (for the scripts)
from explorer.core.watch.watcher import parse_listen


def int_range(low: int, high: int | None = None):
    """A whole number from ``low`` (to ``high``)."""
    return int_at_least(low) if high is None else int_between(low, high)


def usable_device(text: str) -> torch.device:
    """A device that this machine has and torch can compute on: cpu, cuda, cuda:1, mps ..."""
    try:
        device = torch.device(text)
        torch.zeros(1, device=device).item()
    except Exception as exc:  # an unknown name, or a device missing here (CUDA on a machine without it)
        raise argparse.ArgumentTypeError(f"cannot use {text!r} here ({str(exc).splitlines()[0]})") from None
    return device


def host_port(text: str) -> str:
    """``HOST:PORT``, as ``explorer.watch(listen=...)`` takes it."""
    try:
        parse_listen(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("listen: ")) from None  # (argparse names it)
    return text


def folder(text: str) -> str:
    """A folder to write into, made if missing."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, not an empty name")
    try:
        Path(text).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot make the folder {text!r} ({exc.strerror})") from None
    return text
