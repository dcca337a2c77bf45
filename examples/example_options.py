"""The example scripts' option types: a bad value stops a script before it starts, with argparse's one line
naming the option and the fault, and exit status 2 (never a traceback from deep in training).

Kept apart so that each script shows its training loop and ``explorer.watch``, not argument checking.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def int_range(low: int, high: int | None = None):
    """A whole number from ``low`` (to ``high``)."""
    def parse(text: str) -> int:
        value = int(text) if text.strip().isdecimal() else low - 1  # not a whole number (or a sign): refused
        if value < low or (high is not None and value > high):
            limits = f"of at least {low}" if high is None else f"from {low} to {high:,}"
            raise argparse.ArgumentTypeError(f"expected a whole number {limits}, not {text!r}")
        return value
    return parse


def positive_float(text: str) -> float:
    """A finite number above 0 (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, not {text!r}")
    return value


def usable_device(text: str) -> torch.device:
    """A device that this machine has and torch can compute on: cpu, cuda, cuda:1, mps ..."""
    try:
        device = torch.device(text)
        torch.zeros(1, device=device).item()
    except Exception as exc:  # an unknown name, or a device missing here (CUDA on a machine without it)
        raise argparse.ArgumentTypeError(f"cannot use {text!r} here ({str(exc).splitlines()[0]})") from None
    return device


def host_port(text: str) -> str:
    """``HOST:PORT`` with a port from 0 to 65535."""
    _, sep, port = text.rpartition(":")
    if not sep or not port.isdecimal() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 0 to 65535, not {text!r}")
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
