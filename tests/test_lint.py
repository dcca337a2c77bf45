"""The linter's rules (``[tool.ruff]`` in pyproject.toml) hold over the package, the tests, the
benchmarks and the examples: a finding fails the test run, so CI catches it as it catches a failing test."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "explorer", "tests", "benchmarks", "examples"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
