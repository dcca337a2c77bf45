"""Network Explorer: build a network, then watch it learn, live."""

__version__ = "0.1.0"
