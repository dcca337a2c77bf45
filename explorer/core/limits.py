"""Resource limits: what an option, a file or a spec implies is estimated before it is built, and refused
past a limit with a message that names the setting and the limit (never a crash deep inside, hours later).

The memory limit is ``$NETWORK_EXPLORER_MEMORY_LIMIT`` when set (bytes, or with a unit: ``512M``, ``8G``,
``0.5T``), else half of this machine's physical memory. The other limits are fixed: they bound what no
network of this app needs (layers in a spec, pixels of one image).
"""

from __future__ import annotations

import math
import os

from explorer.core.sizes import format_bytes

MEMORY_LIMIT_ENV = "NETWORK_EXPLORER_MEMORY_LIMIT"
DEFAULT_MEMORY_FRACTION = 0.5     # of the physical memory, when the variable is not set
FALLBACK_PHYSICAL_MEMORY = 8 << 30  # where the system does not say (8 GB)
MAX_LAYERS = 1000                 # layers in one network spec
MAX_IMAGE_PIXELS = 50_000_000     # pixels of one image read from a folder (a 7000 x 7000 photo)
MAX_SNAPSHOT_SIDE = 10_000        # pixels of a side of a rendered window (snapshot --size)
FLOAT_BYTES = 4

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "M": 1 << 20, "MB": 1 << 20, "G": 1 << 30, "GB": 1 << 30,
          "T": 1 << 40, "TB": 1 << 40}


class LimitError(ValueError):
    """Work that would need more than a limit allows; the message names what asked for it and the limit.

    ``setting``: the configuration's name of the setting that asked (``n_train``), if one did: the command
    line names its option."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


def physical_memory() -> int:
    """Bytes of physical memory, as the system reports them (a guess of 8 GB where it does not)."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and page_size > 0:
            return int(pages) * int(page_size)
    except (AttributeError, ValueError, OSError):
        pass
    return FALLBACK_PHYSICAL_MEMORY


def parse_bytes(text: str) -> int:
    """``"8G"`` -> 8589934592; a plain number is bytes. ValueError for anything else (or not positive)."""
    t = text.strip().upper().replace(" ", "")
    number = t.rstrip("KMGTB")
    unit = t[len(number):]
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        raise ValueError(f"{MEMORY_LIMIT_ENV} must be a size like 8G, 512M or 1000000000, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{MEMORY_LIMIT_ENV} must be a positive size, got {text!r}")
    return int(value)


def memory_limit() -> int:
    """The most memory (bytes) one model with its data may need: the variable's, else a share of the RAM."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        return parse_bytes(text)
    return int(physical_memory() * DEFAULT_MEMORY_FRACTION)


def check_memory(what: str, nbytes: float, setting: str | None = None) -> None:
    """LimitError unless ``nbytes`` fits the memory limit; ``what`` names the setting or file that asks."""
    limit = memory_limit()
    if not nbytes <= limit:
        raise LimitError(f"{what} would need about {format_bytes(nbytes)} of memory, more than the limit of "
                         f"{format_bytes(limit)} (set {MEMORY_LIMIT_ENV} to change it)", setting)


def check_count(what: str, count: int, limit: int, setting: str | None = None) -> None:
    """LimitError unless ``count`` <= ``limit`` (layers of a spec, pixels of an image)."""
    if count > limit:
        raise LimitError(f"{what}: {count:,} is more than the limit of {limit:,}", setting)
