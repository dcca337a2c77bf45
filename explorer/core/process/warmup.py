"""What a process that will train does while it waits: the imports of torch's first optimiser.

torch's first optimiser imports ``torch._dynamo``: 1.5 s and about 70 MB on a 2-core machine. Every training
process paid it while the window waited for it to build its model (a lecture step, a family chosen, a run
opened), and the window paid it once more, frozen, wherever it first built a model of its own. Done while
waiting (the forking process after its first child, a spare training process before its request, the window
on a plain thread), it is off the path of what the user asked for.

Imports nothing at its top: the window imports it before PyTorch is in.
"""

from __future__ import annotations


def warm_first_optimizer() -> None:
    """Build and drop an optimiser. Nothing is computed (``empty`` only allocates), so no thread of torch's
    starts: the forking process calls it and must stay safe to fork."""
    try:
        import torch

        torch.optim.SGD([torch.empty(1, requires_grad=True)], lr=0.1)
    except Exception:  # noqa: BLE001 - a warm-up only: the real optimiser reports its own faults
        pass
