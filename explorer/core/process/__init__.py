"""Training in a process of its own: ``session`` serves an engine session from a child process behind
the same interface as the in-thread one; ``worker`` starts those children (standard library only, so
the window can start a spare before PyTorch loads)."""
