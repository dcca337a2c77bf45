"""The Qt-free heart of Network Explorer: data sets, models and the training engine.

Nothing in this package may import Qt: it runs headless (tests, the command line,
a GPU machine without a display) and the GUI only ever sees the CPU snapshots it
publishes.
"""
