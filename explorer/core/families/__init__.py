"""The model families: ``base`` (the mini-batch trainer every family builds on, and the side-by-side
comparison of several networks), one sub-package per family (config, model, trainer and ONNX export
plan), ``export_plan`` (what the plans share), and ``registry``, where each family is declared once by
name.

Importing any family imports the registry: it tells the spec checker (``explorer.core.spec``, a layer
below, which cannot import it) which families a spec may name, so a spec is checked alike however the
program came to it.
"""

from explorer.core.families import registry as registry
