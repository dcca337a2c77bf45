"""Network Explorer: build a network, then watch it learn, live."""

from __future__ import annotations

import os as _os

TYPE_CHECKING = False  # typing itself is not imported: `import explorer` stays light
if TYPE_CHECKING:
    from typing import Any as _Any

__version__ = "0.1.0"

# Training runs on a background thread. With OpenMP's default (active) waiting, the idle worker of the
# main thread's team spins on one of the cores the training thread's team needs: on a 2-core machine the
# same DAE step ran about 13% slower on a plain thread than on the main thread, and the GUI thread lost
# CPU too. Passive waiting removes the difference (benchmarks/README.md). It must be set before torch
# loads OpenMP, so it is set here, when the package is imported; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def watch(*args: _Any, **kwargs: _Any) -> _Any:
    """Watch your own model while your script trains it: ``watcher = explorer.watch(model, probe=x)``, then
    ``watcher.step(loss=loss.item())`` once per step; ``python -m explorer attach`` shows it. Returns an
    ``explorer.core.watch.watcher.Watcher``; see ``explorer.core.watch.watcher.watch`` for the arguments.

    The watcher (and torch) load on the first call, so ``import explorer`` stays light. They are imported
    by name: the package's root is imported by the core itself (for its version), and a static import of
    the watcher here would make the core's lower layers depend on its top one."""
    import importlib

    return importlib.import_module("explorer.core.watch.watcher").watch(*args, **kwargs)
