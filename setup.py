"""The package list, the one thing pyproject.toml cannot say: ``resources/`` (the style sheets and the
icon) stays at the top of the repository, and a wheel installs it as the ``explorer.resources`` package,
which a discovery confined to ``explorer/`` would not find. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(packages=find_namespace_packages(include=["explorer", "explorer.*"], exclude=["*.__pycache__"]) + ["explorer.resources"])
