"""Where the app's style sheets and icon are: a module of its own, imported by the start-up code and the
window alike, so that neither has to import the other for it."""

from __future__ import annotations

from pathlib import Path

# resources/ sits beside the package in a source checkout (the README's editable install)
RESOURCES = Path(__file__).resolve().parents[2] / "resources"
