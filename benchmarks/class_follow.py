"""A class following one run: what 30 read-only viewers cost a run on a training server.

    python benchmarks/class_follow.py [--viewers 30] [--family cnn] [--seconds 8] [--repeats 3] [--decode] [--nice 19]

A training server (``python -m explorer serve``, a process of its own, as on a GPU machine) trains one run
for the teacher's window (a ``RemoteSession`` in this process, reading every snapshot at 20 a second as a
window does). Rounds are interleaved: the run alone, then with N viewers following it (one process holds
them all, one thread each). The figures: the run's steps a second (the ratio with / without viewers is
taken within a round, so a shared machine's drift cancels) and the snapshots each viewer received a second.

A viewer reads whole frames and checks each one's size and header as the window's reader does; with
``--decode`` each viewer is a ``FollowSession`` that also rebuilds every snapshot, as a student's window
does. On one machine the viewers' work shares the cores with the training: in a class each window is on
its own machine, so the plain mode is the server's cost, and ``--decode`` says what the same machine
pays if it also hosts the class. ``--nice 19`` runs the viewers at the lowest CPU priority: they then take
only what the training leaves, as a class on machines of its own would, while the server's relay (the
server's own cost) keeps its normal priority; the ratio is then the server's cost alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.core.families.registry import FAMILIES  # noqa: E402
from explorer.core.remote.client import FollowSession, RemoteSession, ServerAddress, connect  # noqa: E402
from explorer.core.wire.frame import read_frame  # noqa: E402


def start_server(token_file: Path) -> tuple[subprocess.Popen, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "explorer", "serve", "--token-file", str(token_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for _ in range(8):
        if proc.stdout.readline().startswith("viewer token file"):
            break
    return proc, json.loads(token_file.read_text())


WARMUP_S = 2.0  # from all viewers connected: they take the run's history, not counted


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def raw_viewer(server: ServerAddress, seconds: float, counts: list[int], index: int, start: threading.Barrier) -> None:
    """Follow the newest run reading whole frames (sizes and headers checked); count its snapshots."""
    sock, _ = connect(server, viewer=True)
    start.wait()
    t_start = time.monotonic() + WARMUP_S
    t_end = t_start + seconds
    try:
        while (now := time.monotonic()) < t_end:
            frame = read_frame(sock, max_body=1 << 31, timeout=5.0)
            tree = frame.fields.get("m")
            if now >= t_start and isinstance(tree, dict) and tree.get("__tuple", [None])[0] == "snapshot":
                counts[index] += 1
    finally:
        sock.close()


def decoding_viewer(server: ServerAddress, seconds: float, counts: list[int], index: int,
                    start: threading.Barrier) -> None:
    """A student's window without its drawing: a FollowSession rebuilding every snapshot."""
    session = FollowSession(server=server, follow_next=False)
    start.wait()
    t_start = time.monotonic() + WARMUP_S
    t_end, last = t_start + seconds, None
    try:
        while (now := time.monotonic()) < t_end:
            snap = session.latest_snapshot()
            if snap is not None and snap is not last:
                last = snap
                counts[index] += now >= t_start
            time.sleep(0.005)
    finally:
        session.stop()


def viewer_pool(args: argparse.Namespace) -> int:
    """(A process of its own) ``--pool N`` viewers for ``--seconds``; prints each one's snapshots/s as JSON."""
    host, port = args.address.rsplit(":", 1)
    server = ServerAddress(host, int(port), args.token)
    counts = [0] * args.pool
    if args.nice:
        os.nice(args.nice)  # the class yields the CPU to the training, as it would on machines of its own
    follow = decoding_viewer if args.decode else raw_viewer
    start = threading.Barrier(args.pool + 1)
    threads = [threading.Thread(target=follow, args=(server, args.seconds, counts, i, start), daemon=True)
               for i in range(args.pool)]
    for t in threads:
        t.start()
    start.wait()  # all connected: the figures start WARMUP_S from now
    print("connected", flush=True)
    for t in threads:
        t.join(WARMUP_S + args.seconds + 30)
    print(json.dumps([c / args.seconds for c in counts]), flush=True)
    return 0


def measure(config, family: str, teacher_at: ServerAddress, viewers_at: ServerAddress, viewers: int,
            seconds: float, decode: bool, server_pid: int, nice: int = 0) -> tuple[float, float, list[float], float, float]:
    """(steps/s, the teacher's snapshots/s, each viewer's snapshots/s, the server's and the viewers' CPU
    in cores) of one run for ``seconds``, with ``viewers`` following it (a process of their own, holding
    the viewer token). The server's CPU is its relay's: the run trains in a process of its own."""
    teacher = RemoteSession(config, family=family, server=teacher_at, snapshot_hz=20)
    pool = None
    try:
        teacher.subscribe(pull=True)
        teacher.start()
        time.sleep(1.0)  # past the first evaluation and the threads' choice
        if viewers:
            command = [sys.executable, __file__, "--pool", str(viewers), "--address",
                       f"{viewers_at.host}:{viewers_at.port}", "--token", viewers_at.token,
                       "--seconds", str(seconds), "--nice", str(nice)] + (["--decode"] if decode else [])
            pool = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            assert pool.stdout is not None and pool.stdout.readline().strip() == "connected"
            time.sleep(WARMUP_S)  # the viewers take the history before the figures start
        step0, t0, seen, last = teacher.trainer.step, time.monotonic(), 0, None
        relay0, pool0 = cpu_seconds(server_pid), cpu_seconds(pool.pid) if pool is not None else 0.0
        while time.monotonic() - t0 < seconds:
            snap = teacher.latest_snapshot()
            if snap is not None and snap is not last:
                last, seen = snap, seen + 1
                teacher.snapshot_taken(snap.seq)
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        rate = (teacher.trainer.step - step0) / elapsed
        relay = (cpu_seconds(server_pid) - relay0) / elapsed
        pool_cpu = (cpu_seconds(pool.pid) - pool0) / elapsed if pool is not None else 0.0
        per_viewer = json.loads(pool.communicate(timeout=120)[0]) if pool is not None else []
        print(f"  threads in use {teacher.threads_in_use} of {teacher.threads} ({teacher.thread_note})", flush=True)
        return rate, seen / elapsed, per_viewer, relay, pool_cpu
    finally:
        teacher.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, default=30)
    ap.add_argument("--family", default="cnn", choices=sorted(FAMILIES))
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--decode", action="store_true", help="each viewer rebuilds every snapshot, as a window does")
    ap.add_argument("--nice", type=int, default=0,
                    help="the viewers' niceness (19: they take only CPU the training leaves, standing for a class "
                         "on machines of its own; 0: they compete with it as equals)")
    ap.add_argument("--pool", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--address", help=argparse.SUPPRESS)
    ap.add_argument("--token", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.pool is not None:
        return viewer_pool(args)
    config = FAMILIES[args.family].config_cls(device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        proc, info = start_server(Path(folder) / "serve.json")
        try:
            teacher_at = ServerAddress(info["host"], info["port"], info["token"])
            viewers_at = ServerAddress(info["host"], info["port"], info["viewer_token"])
            ratios, slowest, relays = [], [], []
            for r in range(args.repeats):
                alone = measure(config, args.family, teacher_at, viewers_at, 0, args.seconds, args.decode, proc.pid)
                watched = measure(config, args.family, teacher_at, viewers_at, args.viewers, args.seconds,
                                  args.decode, proc.pid, args.nice)
                relays.append(watched[3])
                ratios.append(watched[0] / alone[0])
                slowest.append(min(watched[2]) if watched[2] else 0.0)
                print(f"round {r + 1}: alone {alone[0]:.1f} steps/s ({alone[1]:.1f} snapshots/s at the teacher); "
                      f"{args.viewers} viewers {watched[0]:.1f} steps/s ({watched[1]:.1f} at the teacher), "
                      f"ratio {ratios[-1]:.3f}; snapshots/s per viewer: slowest {slowest[-1]:.1f}, "
                      f"median {statistics.median(watched[2] or [0.0]):.1f}; CPU: the server's relay "
                      f"{watched[3]:.3f} cores (alone {alone[3]:.3f}), the viewers {watched[4]:.3f}", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    mode = "rebuilding every snapshot" if args.decode else "reading and checking every frame"
    mode += f", at niceness {args.nice}" if args.nice else ""
    print(f"{args.family}, {args.viewers} viewers {mode}: steps/s with them / alone = {statistics.median(ratios):.3f}, "
          f"slowest viewer {statistics.median(slowest):.1f} snapshots/s, the server's relay "
          f"{statistics.median(relays):.3f} cores (medians of {args.repeats} rounds; {os.cpu_count()} cores here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
