"""Network specs: the builder's layer list as data (``network``: validation, shapes, presets, JSON,
export as a PyTorch file) and the layers it builds from (``layers``: LocalContrastNorm, Concat...)."""
