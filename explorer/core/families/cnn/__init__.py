"""Convolutional networks built from a spec: config and trainer (``trainer``)."""
