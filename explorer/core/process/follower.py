"""A follower rank's entry point: ``python -m explorer.core.process.follower FD RANK WORLD PORT BACKEND CUDA THREADS TIMEOUT``.

Started by rank 0's :class:`explorer.core.process.lockstep.LeadGroup` with its end of a socket pair as FD
(how a follower learns that rank 0 ended, and how it tells rank 0 why it failed); see that module.
"""

from __future__ import annotations

import socket
import sys

if __name__ == "__main__":
    from explorer.core.logs import configure_logging

    configure_logging(role="data-parallel rank")
    from explorer.core.process.lockstep import follow

    fd, rank, world, port, backend, cuda, threads, timeout = sys.argv[1:9]
    follow(socket.socket(fileno=int(fd)), int(rank), int(world), int(port), backend, cuda == "1", int(threads),
           float(timeout))
