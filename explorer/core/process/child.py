"""The training process's entry point: ``python -m explorer.core.process.child FD``.

Started by :class:`explorer.core.process.worker.WorkerProcess` with its end of a socket pair as FD. Kept
apart from ``worker`` (which the window imports before PyTorch is in, and which must not import the
session it serves: that was an import cycle) so that only the child imports the session and PyTorch.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

if __name__ == "__main__":
    import signal

    # Ctrl+C in the terminal reaches every process of the app: the window (or server) ends, and this
    # process ends with it when its socket closes, without a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from explorer.core.logs import configure_logging

    configure_logging(role="training process")  # its own failures, and the engine's, in the app's log
    from explorer.core.process.session import serve_child  # imports PyTorch: the seconds a spare saves

    serve_child(Connection(int(sys.argv[1])))
