"""Fully convolutional segmentation networks and the with/without skips comparison (``trainer``)."""
