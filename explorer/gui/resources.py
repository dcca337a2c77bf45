"""Where the app's style sheets and icon are: ``resources/`` at the top of the repository.

A wheel installs that folder as ``explorer/resources`` (pyproject.toml maps the package there); a source
checkout, with or without an editable install, has it beside the package. This module imports only the
standard library, so the lookup works before Qt or torch is loaded, and wherever they are missing.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # the explorer package


def _find_resources() -> Path:
    installed = _PACKAGE / "resources"  # from a wheel
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "resources"  # a source checkout (editable install, or run from the checkout)


RESOURCES = _find_resources()


def resource_path(name: str) -> Path:
    """The path of the resource file ``name`` (for example ``"style.qss"``), whether it exists or not."""
    return RESOURCES / name
