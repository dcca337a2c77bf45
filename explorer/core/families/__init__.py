"""The model families: ``base`` (the mini-batch trainer every family builds on, and the side-by-side
comparison of several networks), one sub-package per family (config, model and trainer), and
``registry``, where each family is declared once by name."""
