"""Network Explorer: build a network, then watch it learn, live."""

import os as _os

__version__ = "0.1.0"

# Training runs on a background thread. With OpenMP's default (active) waiting, the idle worker of the
# main thread's team spins on one of the cores the training thread's team needs: on a 2-core machine the
# same DAE step ran about 13% slower on a plain thread than on the main thread, and the GUI thread lost
# CPU too. Passive waiting removes the difference (benchmarks/README.md). It must be set before torch
# loads OpenMP, so it is set here, when the package is imported; a value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
