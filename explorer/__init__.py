"""Network Explorer: build a network, then watch it learn, live."""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: `import explorer` stays light
if TYPE_CHECKING:
    from typing import Any as _Any

__version__ = "0.1.0"

# OpenMP's waiting policy is the app's choice, set where the app starts (explorer/cli/__init__.py), not
# here: a user's script that imports explorer to watch its own model keeps OpenMP's default, which its
# own loop on the main thread is fastest with.


def watch(*args: _Any, **kwargs: _Any) -> _Any:
    """Watch your own model while your script trains it: ``watcher = explorer.watch(model, probe=x)``, then
    ``watcher.step(loss=loss.item())`` once per step; ``python -m explorer attach`` shows it. Returns an
    ``explorer.core.watch.watcher.Watcher``; see ``explorer.core.watch.watcher.watch`` for the arguments.

    The watcher (and torch) load on the first call, so ``import explorer`` stays light. They are imported
    by name: the package's root is imported by the core itself (for its version), and a static import of
    the watcher here would make the core's lower layers depend on its top one."""
    import importlib

    return importlib.import_module("explorer.core.watch.watcher").watch(*args, **kwargs)
