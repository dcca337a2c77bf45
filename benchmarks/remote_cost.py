"""What training on a server costs against training in the window's own training process.

    python benchmarks/remote_cost.py [--family cnn] [--seconds 8] [--repeats 3]

Both sessions are the window's kind (a ``ProcessSession`` here, a ``RemoteSession`` to a
``TrainingServer`` over loopback: the same training process, its frames relayed by the server), trained
at full speed while this process reads every snapshot at 20 a second as the window does. The figure is
steps a second, and the snapshots received a second; the ratio remote / local is taken within one round
(rounds interleaved, so a shared machine's drift cancels). Over loopback the difference is the relay:
a real network adds its latency to the snapshots, not to the training, which never waits for the window.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from explorer.core.families.registry import FAMILIES  # noqa: E402
from explorer.core.process.session import ProcessSession  # noqa: E402
from explorer.core.remote.client import RemoteSession, ServerAddress  # noqa: E402
from explorer.core.remote.server import TrainingServer  # noqa: E402
from explorer.core.wire.auth import new_token  # noqa: E402


def measure(session, seconds: float) -> tuple[float, float]:
    """(steps/s, snapshots received/s) of ``session`` trained at full speed for ``seconds``."""
    session.subscribe(pull=True)
    session.start()
    time.sleep(1.0)  # past the first evaluation and the threads' choice
    step0, t0, seen, last = session.trainer.step, time.monotonic(), 0, None
    while time.monotonic() - t0 < seconds:
        snap = session.latest_snapshot()
        if snap is not None and snap is not last:
            last, seen = snap, seen + 1
            session.snapshot_taken(snap.seq)
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    steps = session.trainer.step - step0
    session.stop()
    return steps / elapsed, seen / elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", default="cnn", choices=sorted(FAMILIES))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    token = new_token()
    server = TrainingServer(token=token)
    server.start()
    address = ServerAddress(*server.address, token)
    config = FAMILIES[args.family].config_cls(device="cpu")
    ratios = []
    try:
        for r in range(args.repeats):
            local = measure(ProcessSession(config, family=args.family, snapshot_hz=20), args.seconds)
            remote = measure(RemoteSession(config, family=args.family, server=address, snapshot_hz=20), args.seconds)
            ratios.append(remote[0] / local[0])
            print(f"round {r + 1}: local {local[0]:.1f} steps/s ({local[1]:.1f} snapshots/s), "
                  f"server over loopback {remote[0]:.1f} steps/s ({remote[1]:.1f} snapshots/s): "
                  f"ratio {ratios[-1]:.3f}", flush=True)
    finally:
        server.close()
    print(f"{args.family}: server over loopback / local training process = {statistics.median(ratios):.3f} "
          f"(median of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
