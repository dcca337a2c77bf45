"""The window's saved settings (QSettings) and the choice of where training runs.

Both the start-up code (``app.py``, which runs before torch is imported) and the main window read
these, so they live here, importing neither of them nor the core: the start-up window reads the saved
geometry before the main window's module (which needs torch) is loaded.
"""

from __future__ import annotations

import os

from PySide6 import QtCore

# where the window keeps its layout, refresh rate and geometry (QSettings)
SETTINGS_ORG = "NetworkExplorer"
SETTINGS_APP = "NetworkExplorer"

TRAINING_ENV = "NETWORK_EXPLORER_TRAINING"  # "process" or "thread": overrides the saved choice


def process_training_wanted(settings: QtCore.QSettings) -> bool:
    """Whether sessions train in a separate process (Training > Train in a separate process; on unless
    turned off). The environment variable wins: the tests train on a thread unless they ask otherwise."""
    forced = os.environ.get(TRAINING_ENV, "").strip().lower()
    if forced in ("process", "thread"):
        return forced == "process"
    # a training process inherits its socket by file descriptor, which Windows cannot pass: a thread there
    value = settings.value("training/process", os.name != "nt")
    return value not in (False, "false", "0", 0)
