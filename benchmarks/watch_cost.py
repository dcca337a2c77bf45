"""What watching costs a user's own training loop, and what a window watching it receives.

Runs each example of ``examples/`` as the user runs it, as a separate process, in three ways, interleaved
(``--repeats`` rounds of: bare, watched with no window, watched with viewers attached):

* ``--no-watch``: the bare loop;
* watched, nobody attached: ``explorer.watch`` in the loop, no viewer (target: at most 0.5% slower);
* watched with viewers: clients over loopback read every frame (target: at most 3% slower with one
  viewer, the default budget), counting the snapshots each receives per second.

With ``--viewers 30`` (the class that follows one run) the viewers are 30 read-only clients of one run:
the trainer's speed should stay within 5% of no viewers and each viewer get at least 10 snapshots/s.

Each figure is the loop's own steps per second, as the script prints it (training time only). Ratios
are taken within one round, so a shared machine's drift cancels out.

    python benchmarks/watch_cost.py                      # the three examples, 3 rounds, one viewer
    python benchmarks/watch_cost.py --examples cnn --viewers 30
    python benchmarks/watch_cost.py --examples cnn --nice 19   # the viewer at the lowest CPU priority
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.core.wire.auth import read_token_file  # noqa: E402
from explorer.core.wire.client import FrameClient  # noqa: E402

# example -> (script, arguments for a run of some seconds on 2 CPU cores)
EXAMPLES = {
    "cnn": ("watch_cnn_digits.py", ["--epochs", "100", "--steps", "3000"]),
    "lstm": ("watch_char_lstm.py", ["--steps", "300"]),
    "unet": ("watch_unet_scenes.py", ["--epochs", "100", "--steps", "400"]),
}
RATE = re.compile(r"([0-9.]+) steps/s")
WATCHING = re.compile(r"watching .* on ([0-9.]+):([0-9]+) \(token in (.+)\)")


class Viewer(threading.Thread):
    """A client that reads every frame of one run and counts its snapshots (as a window's reader would)."""

    def __init__(self, host: str, port: int, token: str, nice: int = 0):
        super().__init__(daemon=True)
        self.nice = nice
        self.client = FrameClient(host, port, token=token, role="viewer")
        self.snapshot_times: list[float] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            if self.nice and hasattr(os, "setpriority"):  # this thread alone (Linux: a thread is a task of its
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)  # own); its threads too
            self.client.connect()
            while True:
                frame = self.client.frames(timeout=1.0)
                if frame is None:
                    if self.client.closed:
                        return
                    continue
                if frame.kind == "snapshot":
                    self.snapshot_times.append(time.perf_counter())
                elif frame.kind in ("bye", "refused"):
                    return
        except Exception as exc:  # noqa: BLE001 - reported in the figures
            self.error = f"{type(exc).__name__}: {exc}"

    def rate(self) -> float:
        t = self.snapshot_times[1:]  # (the first is the one kept for late clients)
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 2 else 0.0


def run_example(name: str, mode: str, viewers: int, nice: int = 0) -> dict:
    """One run of an example: its steps/s, and with viewers the snapshots/s each received."""
    script, args = EXAMPLES[name]
    cmd = [sys.executable, str(ROOT / "examples" / script), *args]
    if mode == "bare":
        cmd.append("--no-watch")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    clients: list[Viewer] = []
    err_lines: list[str] = []

    def read_err() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            m = WATCHING.search(line)
            if m and mode == "viewers":
                info = read_token_file(m.group(3))
                token = info.get("viewer_token") or info["token"]
                for _ in range(viewers):
                    v = Viewer(m.group(1), int(m.group(2)), token, nice)
                    v.start()
                    clients.append(v)

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()
    assert proc.stdout is not None
    out = proc.stdout.read()  # (not communicate(): it would read stderr too, racing the reader for its lines)
    proc.wait(600)
    reader.join(5)
    rates = RATE.findall(out)
    if proc.returncode != 0 or not rates:
        raise RuntimeError(f"{script} ({mode}) failed, exit {proc.returncode}:\n{out[-2000:]}\n{''.join(err_lines)[-2000:]}")
    for v in clients:
        v.join(10)
    result = {"steps_per_s": float(rates[-1])}
    if clients:
        snap_rates = [v.rate() for v in clients]
        result.update(snapshots_per_s_min=min(snap_rates), snapshots_per_s_median=statistics.median(snap_rates),
                      viewer_errors=[v.error for v in clients if v.error])
    return result


def measure(names: list[str], repeats: int = 3, viewers: int = 1, nice: int = 0) -> dict[str, dict]:
    """The figures of each example in ``names`` (``repeats`` interleaved rounds of bare, watched alone and
    watched with ``viewers`` viewers), printed as they come; also run by ``benchmarks/run.py``."""
    figures: dict[str, dict] = {}
    for name in names:
        rounds = []
        for r in range(repeats):
            row = {mode: run_example(name, mode, viewers, nice) for mode in ("bare", "alone", "viewers")}
            rounds.append(row)
            print(f"{name} round {r + 1}: bare {row['bare']['steps_per_s']:.1f} steps/s, "
                  f"watched alone {row['alone']['steps_per_s']:.1f}, with {viewers} viewer(s) "
                  f"{row['viewers']['steps_per_s']:.1f} ({row['viewers'].get('snapshots_per_s_min', 0):.1f} "
                  f"snapshots/s at the slowest viewer)", flush=True)
        alone = statistics.median(r["alone"]["steps_per_s"] / r["bare"]["steps_per_s"] for r in rounds)
        viewed = statistics.median(r["viewers"]["steps_per_s"] / r["bare"]["steps_per_s"] for r in rounds)
        snaps = statistics.median(r["viewers"].get("snapshots_per_s_min", 0.0) for r in rounds)
        figures[name] = {"rounds": rounds, "alone_over_bare": alone, "viewers_over_bare": viewed,
                         "snapshots_per_s_slowest_viewer": snaps}
        print(f"{name}: watched alone / bare {alone:.3f} (cost {100 * (1 - alone):+.1f}%), with {viewers} "
              f"viewer(s) / bare {viewed:.3f} (cost {100 * (1 - viewed):+.1f}%), {snaps:.1f} snapshots/s "
              f"at the slowest viewer (medians of {repeats})", flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", default=",".join(EXAMPLES), help=f"which (default all: {','.join(EXAMPLES)})")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--viewers", type=int, default=1, help="clients attached in the watched-with-viewers runs")
    ap.add_argument("--nice", type=int, default=0,
                    help="the viewers' niceness (19: they take only the CPU the loop leaves, standing for a window "
                         "on another machine or on spare cores; 0: they compete with the loop as equals)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if not 0 <= args.nice <= 19:
        print(f"watch_cost: error: --nice: {args.nice} is not a niceness from 0 to 19", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.examples.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXAMPLES]
    if unknown:
        print(f"watch_cost: error: --examples: unknown {', '.join(unknown)} (known: {', '.join(EXAMPLES)})",
              file=sys.stderr)
        return 2
    figures = measure(names, args.repeats, args.viewers, args.nice)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
