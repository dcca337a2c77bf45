"""Where the app's memory goes: the window and its training processes, forked or each started alone.

    python benchmarks/process_memory.py [--seconds 60] [--repeats 2]

Runs the app as a user launches it (``python -m explorer gui --start``: the RBM on the digits, training,
views refreshing; Qt's offscreen platform unless a display is given) for ``--seconds``, then reads
``/proc/PID/smaps_rollup`` of the window and every process under it: RSS, PSS (shared pages divided among
the processes that map them) and private memory. Rounds alternate the default (training processes forked
from one that imported PyTorch once) with ``NETWORK_EXPLORER_FORK=0`` (each started alone, importing
PyTorch itself). The sum of PSS is the memory the app takes from the machine. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rollup(pid: int) -> dict[str, float]:
    """RSS, PSS and private memory of ``pid`` in MB (empty if it has gone)."""
    fields: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) / 1024
    except OSError:
        return {}
    return {"rss": fields.get("Rss", 0.0), "pss": fields.get("Pss", 0.0),
            "private": fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)}


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (children first)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def role(pid: int, app: int) -> str:
    """What a process under the window is (a forked training process keeps its forking process's command)."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return "?"
    if "process.zygote" in text and ppid == app:
        return "forking process"
    return "training process"


def measure(seconds: float, fork: bool) -> list[tuple[str, int, dict[str, float]]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETWORK_EXPLORER_FORK": "1" if fork else "0"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = subprocess.Popen([sys.executable, "-m", "explorer", "gui", "--start"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(seconds)
        rows = [("window", app.pid, rollup(app.pid))]
        rows += [(role(p, app.pid), p, rollup(p)) for p in descendants(app.pid)]
        return [r for r in rows if r[2]]
    finally:
        app.terminate()
        try:
            app.wait(30)
        except subprocess.TimeoutExpired:
            app.kill()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    if sys.platform != "linux":
        print("Linux only (/proc/PID/smaps_rollup)")
        return 2
    for r in range(args.repeats):
        for fork in (True, False):
            rows = measure(args.seconds, fork)
            print(f"round {r + 1}, training processes {'forked' if fork else 'each started alone'}, "
                  f"{args.seconds:g} s in:")
            for name, pid, m in rows:
                print(f"  {name:18s} pid {pid:7d}  RSS {m['rss']:6.0f} MB  PSS {m['pss']:6.0f} MB  "
                      f"private {m['private']:6.0f} MB")
            total = sum(m["pss"] for _, _, m in rows)
            training = sum(m["pss"] for name, _, m in rows if name != "window")
            print(f"  PSS in all {total:.0f} MB, of which the training side {training:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
