"""The model families, one sub-package each (config, model and trainer), and ``registry``: where
each family is declared once by name."""
