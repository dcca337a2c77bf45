"""The type check: mypy, with the configuration in pyproject.toml, finds nothing in the package.

The core and the command line are checked with every default error code; the window with the codes
pyproject.toml lists as Qt noise turned off. mypy keeps its cache in .mypy_cache at the repository root,
so a run after the first checks only what changed.
"""

from pathlib import Path

import pytest

pytest.importorskip("mypy")

from mypy import api as mypy_api  # noqa: E402 - only once mypy is known to be there

ROOT = Path(__file__).resolve().parent.parent


def test_package_has_no_type_errors(monkeypatch):
    monkeypatch.chdir(ROOT)  # the configuration's paths are the repository's
    stdout, stderr, status = mypy_api.run(["--config-file", str(ROOT / "pyproject.toml")])
    report = stdout + stderr
    assert status == 0, report
    assert report.strip().splitlines()[-1].startswith("Success: no issues found"), report
