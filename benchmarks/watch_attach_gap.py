"""How long the views stop coming when a window attaches to a watched training loop.

    python benchmarks/watch_attach_gap.py [--rounds 2] [--seconds 20]

Trains ``examples/watch_cnn_digits.py``'s model in this process, watched, and after a few seconds starts
the real window, ``python -m explorer attach HOST:PORT``, in another process (Qt's offscreen platform
unless a display is set; settings of its own, so at its default size). The window's start-up takes a core of the
machine's while the loop trains. Prints, for each round: when the first snapshot came after the window
connected, the longest time without a snapshot in the ``--seconds`` after that (what a user sees as views
that stop, and a hole in the gradient curve), the snapshots a second, and the highest debt of the pacer.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import watch_cnn_digits as example  # noqa: E402

import explorer  # noqa: E402
from explorer.core.watch import watcher as watcher_module  # noqa: E402

WARM_S = 4.0  # the loop trains alone this long before the window starts


def one_round(seconds: float) -> dict[str, float]:
    snapshots: list[float] = []
    debts: list[float] = []
    snapshot = watcher_module.Watcher._snapshot

    def recorded(self, now, row, norms):
        snapshot(self, now, row, norms)
        snapshots.append(time.perf_counter())

    watcher_module.Watcher._snapshot = recorded
    x_train, y_train, x_test, y_test = example.load_digits()
    torch.manual_seed(0)
    model = example.DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    w = explorer.watch(model, probe=x_test[:16], target=y_test[:16], quiet=True)
    assert w.address is not None
    window = None
    connected = None
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, XDG_CONFIG_HOME=home, NETWORK_EXPLORER_CACHE=os.path.join(home, "cache"))
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        try:
            t0 = time.perf_counter()
            end = None
            while end is None or time.perf_counter() < end:
                for batch in torch.randperm(len(x_train)).split(32):
                    loss = loss_fn(model(x_train[batch]), y_train[batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    stepped = time.perf_counter()
                    w.step(loss=loss.item())
                    now = time.perf_counter()
                    if window is None and now - t0 > WARM_S:
                        window = subprocess.Popen(
                            [sys.executable, "-m", "explorer", "attach", f"{w.address[0]}:{w.address[1]}",
                             "--token", w.token],
                            env=env, stdout=subprocess.DEVNULL)
                    if connected is None and w._viewers > 0:  # (seen in this step's watching)
                        connected = stepped
                        end = now + seconds
                        debts.append(w._pacer.debt)  # (the first: what the step that saw it left owing)
                        continue
                    if connected is not None:
                        debts.append(w._pacer.debt)
                    if end is not None and now >= end:
                        break
                    if connected is None and window is not None and now - t0 > WARM_S + 120:
                        raise SystemExit("the window did not connect within two minutes")
        finally:
            w.close()
            watcher_module.Watcher._snapshot = snapshot
            if window is not None:
                window.terminate()
                window.wait(20)
    assert connected is not None
    after = [t for t in snapshots if connected <= t <= connected + seconds]
    gaps = [b - a for a, b in zip(after, after[1:])]
    return {"first": after[0] - connected if after else float("inf"),
            "longest_gap": max(gaps, default=float("inf")),
            "per_s": len(after) / seconds,
            "max_debt": max(debts, default=0.0), "debt_at_connect": debts[0] if debts else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to watch after the window connected")
    args = ap.parse_args(argv)
    for k in range(args.rounds):
        r = one_round(args.seconds)
        print(f"round {k + 1}: first snapshot {r['first'] * 1e3:.0f} ms after the window connected; longest gap "
              f"{r['longest_gap']:.2f} s; {r['per_s']:.1f} snapshots/s; the pacer's debt {r['debt_at_connect']:.2f} s after that step, at most {r['max_debt']:.2f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
