"""The :class:`Snapshot`: an immutable CPU copy of the model at one step, what observers get from a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    """An immutable picture of the model at one step, safe to hand to any thread."""

    run_id: int
    seq: int
    step: int
    epoch: int
    time: float
    arrays: dict[str, Any]
    scalars: dict[str, float] = field(default_factory=dict)
