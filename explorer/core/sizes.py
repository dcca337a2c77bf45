"""Byte counts for people, one way everywhere (file sizes in notices, memory bounds in labels)."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """"812 bytes", "29.6 kB", "2.2 MB", "1.3 GB" (powers of 1024, as the timeline's MB are)."""
    n = float(n)
    if n < 1024:
        return f"{n:.0f} bytes"
    for unit in ("kB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}"
    return f"{n:.1f} GB"
