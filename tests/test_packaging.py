"""What a wheel carries: the style sheets and the icon (resources/ at the top of the repository, installed
as explorer/resources, found by the package's own lookup), the bundled digits, the licence, and which
requirements are extras."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.gui.resources import RESOURCES, resource_path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "explorer", "resources")

# run inside the installed wheel, with the checkout out of reach (-I: no PYTHONPATH, no current folder);
# importing explorer.gui.resources needs neither Qt nor torch
PROBE = """
import json
import explorer
from explorer.gui.resources import RESOURCES, resource_path
print(json.dumps({"package": explorer.__file__, "resources": str(RESOURCES),
                  "style": str(resource_path("style.qss")), "icon": str(resource_path("icon.svg")),
                  "presentation": str(resource_path("presentation.qss"))}))
"""


def test_pyproject_lists_every_package_and_the_resources():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["packages"]
    found = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "explorer").rglob("__init__.py"))
    assert sorted(listed) == sorted([*found, "explorer.resources"])


def test_the_checkout_finds_its_resources():
    assert RESOURCES == ROOT / "resources"
    for name in ("style.qss", "presentation.qss", "icon.svg"):
        assert resource_path(name) == ROOT / "resources" / name and resource_path(name).is_file()


def test_a_wheel_installs_the_style_sheets_and_the_icon(tmp_path):
    pytest.importorskip("setuptools", minversion="77")  # the build backend, used without isolation
    src = tmp_path / "src"  # a copy, so that the build leaves nothing in the checkout
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, env=env, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("network_explorer-*.whl")

    venv = tmp_path / "venv"  # a fresh environment without pip: this one's pip installs into it
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)], check=True,
                   env=env, capture_output=True, timeout=120)
    shutil.rmtree(src)  # nothing of the copy can be found from the venv now

    out = subprocess.run([str(python), "-I", "-c", PROBE], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    package = Path(found["package"]).parent
    assert package.parent.name == "site-packages" and venv in package.parents  # the installed copy
    assert Path(found["resources"]) == package / "resources"
    for name in ("style", "icon", "presentation"):
        path = Path(found[name])
        assert path.parent == package / "resources"
        assert path.read_bytes() == (ROOT / "resources" / path.name).read_bytes()
    digits = Path("core", "data", "bundled", "digits.npz")
    assert (package / digits).read_bytes() == (ROOT / "explorer" / digits).read_bytes()
    (dist_info,) = package.parent.glob("network_explorer-*.dist-info")
    assert "MIT License" in (dist_info / "licenses" / "LICENSE").read_text(encoding="utf-8")
    # onnx, PyAV and scikit-learn are extras, platformdirs a requirement
    requires = [line.split(":", 1)[1].strip() for line in (dist_info / "METADATA").read_text("utf-8").splitlines()
                if line.startswith("Requires-Dist:")]
    assert "platformdirs>=3" in requires
    assert {r.split(";")[0] for r in requires if r.startswith(("onnx", "av", "scikit-learn"))} == {
        "onnx>=1.16", "av>=12", "scikit-learn>=1.2"}
    assert all("extra ==" in r for r in requires if r.startswith(("onnx", "av", "scikit-learn")))
