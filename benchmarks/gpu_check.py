"""Check the CUDA path headless (no Qt imported): every family trains on the GPU, fast, without per-step syncs.

    python benchmarks/gpu_check.py [--families rbm,dae,...] [--steps 500] [--seconds 1.5] [--data-dir DIR] [--json FILE]
    python benchmarks/gpu_check.py --device cpu --steps 20 --seconds 0   # dry run of the whole script on the CPU

For each family (the rows of ``benchmarks/run.py``: the same models, batches, data and bare loops from
each ``benchmarks/<family>_speed.py``; plus the vanilla RNN on the LSTM's adding problem):

1. sync: a trainer is built on the device and warmed up (a few steps outside the check: first calls
   allocate and pick kernels); then ``train_step()`` runs ``--steps`` times, and at least once across
   an epoch boundary (the reshuffle), under ``torch.cuda.set_sync_debug_mode("error")``: any operation
   that makes the CPU wait for the GPU (``.item()``, ``.cpu()``, a blocking copy, a data-dependent
   shape) inside a training step raises. The first offending line is reported; one family failing
   does not stop the others (the rest of its steps then run without the check).
2. snapshot: ``trainer.snapshot()`` is timed on the device (it may synchronise: the views need the
   data on the CPU) and must hold CPU numpy arrays only, never a tensor.
3. speed: samples/s through the engine (a TrainingSession on its thread, nobody subscribed) on the
   device, and on the CPU with fewer steps (``--cpu-steps``); the family's bare PyTorch loop on the
   device, and the family's ``train_step()`` in a plain loop (no engine); the three interleaved over
   ``--repeats``, medians; engine/bare (split into engine/trainer and trainer/bare) and device/CPU ratios.
4. learning: the held-out metric (reconstruction error or loss: lower is better) before the first
   step and after the checked steps. Reported; a family that did not improve is flagged, not failed.
5. process: the app trains in a separate process by default (``explorer/core/process/session.py``).
   A ``ProcessSession`` on the device trains the timed steps there; it must report the device, send a
   snapshot of CPU numpy arrays only, and its samples/s are set against the in-thread engine's
   (``ratio_process_engine``). A process that cannot start or fails fails the family.

One table is printed, with the elapsed time; ``--json FILE`` writes the same figures. The exit code
is 0 when every family ran, passed the sync check and gave numpy-only snapshots, else 1; 2 for bad
arguments, or ``--device cuda`` (the default) where torch sees no CUDA device. ``--device cpu`` runs
everything except the sync check on the CPU, so the script itself can be tried on any machine.
With the defaults all seven families take a few minutes on one H100.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import math
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import run as suite  # noqa: E402  # benchmarks/run.py: the cases, engine_rate, on_plain_thread (no Qt at import)
import torch  # noqa: E402
from common import loop_rate, sync  # noqa: E402

WARMUP_STEPS = 5          # before the sync check: first calls allocate memory and choose kernels
ENGINE_WARMUP = 20        # steps the engine runs before its clock starts
SNAPSHOT_CALLS = 5        # snapshot() timings: the first call, then the median of the rest
# the held-out metric the learning check reads, first one the trainer reports (all: lower is better)
LEARNING_METRICS = ("heldout_recon_error", "heldout_loss", "pretrain_heldout_error")
# why a family may not improve within a few hundred steps, printed when it did not
LEARNING_NOTES = {
    "mlp": "expected: the deep sigmoid MLP from small random weights sits on a plateau near ln 10 for thousands "
           "of steps (the vanishing gradient its panel shows)",
    "rbm": "on random data (no MNIST in --data-dir) the reconstruction error has little to learn",
}


def case_rnn(quick: bool, data_dir: str | None, device: str) -> suite.Case:
    """The vanilla RNN on the LSTM's adding problem (T = 50, 64 units, batch 64), bare loop with nn.RNN."""
    import lstm_speed

    d = lstm_speed.suite_case(quick=quick, data_dir=data_dir, device=device, model="rnn")
    return suite.Case(d["family"], d["label"], d["describe"], d["config"], d["bare"], d["batch"])


CASES: dict[str, Callable[[bool, str | None, str], suite.Case]] = {**suite.CASES, "rnn": case_rnn}


# -- the checks ------------------------------------------------------------------------------------
def _site(exc: BaseException) -> str:
    """The line that raised, preferring the project's own code over torch's internals."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    own = [f for f in frames if os.path.abspath(f.filename).startswith(os.path.join(ROOT, "explorer") + os.sep)]
    f = (own or frames)[-1]
    return f"{os.path.relpath(f.filename, ROOT)}:{f.lineno} in {f.name}: {(f.line or '').strip()}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def checked_steps(trainer, steps: int, debug: bool) -> dict[str, Any]:
    """Run ``steps`` training steps; with ``debug`` under the CUDA sync debug mode "error".

    Returns {"sync": "pass" | "fail" | "skipped", "sync_steps", and on a failure "sync_error",
    "sync_where" (file:line: code) and "sync_step" (which checked step, from 1)}. After a
    sync error the remaining steps run without the check, so the learning check still sees them; an
    error that is not about synchronisation then raises again, and the family fails with it."""
    out: dict[str, Any] = {"sync": "skipped" if not debug else "pass", "sync_steps": steps}
    done = 0
    if debug:
        sync(trainer.device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            while done < steps:
                trainer.train_step()
                done += 1
        except RuntimeError as exc:
            out.update(sync="fail", sync_error=_one_line(exc), sync_where=_site(exc), sync_step=done + 1)
            done += 1  # that step was cut short where it synchronised
        finally:
            torch.cuda.set_sync_debug_mode(0)
    while done < steps:
        trainer.train_step()
        done += 1
    sync(trainer.device)
    return out


def non_numpy(obj: Any, path: str = "snapshot", depth: int = 0) -> list[str]:
    """Every place in a snapshot that is not CPU data: torch tensors (of any device) and object arrays of them."""
    if depth > 8:
        return []
    if isinstance(obj, torch.Tensor):
        return [f"{path}: torch tensor on {obj.device}"]
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            return [p for i, v in enumerate(obj.flat) for p in non_numpy(v, f"{path}[{i}]", depth + 1)]
        return []
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_numpy(v, f"{path}[{k!r}]", depth + 1)]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_numpy(v, f"{path}[{i}]", depth + 1)]
    return []


def snapshot_check(trainer) -> dict[str, Any]:
    """Time ``snapshot()`` (the first call, then the median of the rest) and look for tensors in it.

    A training step runs between two calls, untimed, as in a session: some families keep views of an
    unchanged step, or recompute costly views only within a share of the time (the recurrent probe),
    so the first call is the full cost and the median the typical one."""
    times, bad = [], []
    for i in range(SNAPSHOT_CALLS):
        if i:
            trainer.train_step()
        sync(trainer.device)
        t0 = time.perf_counter()
        snap = trainer.snapshot()
        times.append((time.perf_counter() - t0) * 1000)
        bad = non_numpy(snap)
    return {"snapshot_first_ms": times[0], "snapshot_ms": statistics.median(times[1:] or times),
            "snapshot_numpy_only": not bad, "snapshot_not_numpy": bad[:10], "snapshot_keys": len(snap)}


def heldout_metric(trainer) -> tuple[str, float]:
    vals = trainer.evaluate()
    for name in LEARNING_METRICS:
        if name in vals:
            return name, float(vals[name])
    raise RuntimeError(f"no held-out metric among {', '.join(sorted(vals))}")


def trainer_rate(case: suite.Case, steps: int, warmup: int) -> float:
    """samples/s of the family's own ``train_step()`` called in a plain loop: its maths without the engine."""
    tr = suite._trainer(case)
    return loop_rate(tr.train_step, steps, tr.batch_size, tr.device, warmup)


def speed(case: suite.Case, cpu_case: suite.Case, steps: int, cpu_steps: int, repeats: int) -> dict[str, Any]:
    """Engine, the trainer alone and the bare loop on the device, interleaved (the order rotating), medians;
    the engine on the CPU once.

    engine/bare is the figure the target is about; it splits into engine/trainer (what the engine's thread,
    metrics log and evaluations cost) and trainer/bare (what the family computes beyond the bare loop's
    maths for its views, e.g. the deep MLP's per-layer gradient statistics)."""
    eng, trn, bare = [], [], []
    variants = [(eng, lambda: suite.engine_rate(case, steps, warmup=ENGINE_WARMUP)),
                (trn, lambda: suite.on_plain_thread(trainer_rate, case, steps, ENGINE_WARMUP)),
                (bare, lambda: suite.on_plain_thread(case.bare, steps))]
    for r in range(repeats):
        for box, fn in variants[r % 3:] + variants[:r % 3]:  # none always runs on the warmer machine
            box.append(fn())
    cpu = suite.engine_rate(cpu_case, cpu_steps, warmup=max(2, cpu_steps // 5))
    e, t, b = statistics.median(eng), statistics.median(trn), statistics.median(bare)
    return {"engine_per_s": e, "trainer_per_s": t, "bare_per_s": b, "ratio_engine_bare": e / b,
            "ratio_engine_trainer": e / t, "ratio_trainer_bare": t / b, "engine_cpu_per_s": cpu,
            "speedup_vs_cpu": e / cpu, "engine_runs": eng, "trainer_runs": trn, "bare_runs": bare,
            "speed_steps": steps, "cpu_steps": cpu_steps, "repeats": repeats}


def process_check(case: suite.Case, steps: int, warmup: int) -> dict[str, Any]:
    """The family in a training process on the device, as the app runs it: samples/s over ``steps``,
    the device the process reports, and one snapshot (CPU numpy only)."""
    from explorer.core.data.datasets import DataError
    from explorer.core.process.session import ProcessSession

    try:
        s = ProcessSession(case.config, family=case.family)
    except DataError as exc:
        # the suite's stand-in data when --data-dir has no MNIST (the RBM's "random") lives in this
        # process only: a training process builds its data from the configuration, as the app's do
        return {"process_skipped": f"its data cannot be made in another process ({exc}); "
                                   "give --data-dir with MNIST"}
    try:
        s.step(warmup)
        if not s.wait(600):
            raise RuntimeError("the training process did not finish its warm-up steps")
        t0 = time.perf_counter()
        s.step(steps)
        if not s.wait(600):
            raise RuntimeError("the training process did not finish its timed steps")
        dt = time.perf_counter() - t0
        if s.error:
            raise RuntimeError(f"the training process failed: {s.error}")
        s.subscribe()
        s.request_snapshot()
        t_end = time.monotonic() + 60
        while s.latest_snapshot() is None and time.monotonic() < t_end:
            time.sleep(0.02)
        snap = s.latest_snapshot()
        if snap is None:
            raise RuntimeError("the training process sent no snapshot within 60 s")
        bad = non_numpy(snap.arrays)
        return {"process_per_s": steps * case.batch / dt, "process_device": str(s.trainer.device),
                "process_snapshot_numpy_only": not bad, "process_snapshot_not_numpy": bad[:5]}
    finally:
        s.close()


def check_family(fam: str, device: str, args) -> dict[str, Any]:
    t0 = time.perf_counter()
    row: dict[str, Any] = {"family": fam, "device": device}
    try:
        case = CASES[fam](False, args.data_dir, device)
        row.update(model=case.label, setup=case.describe, batch=case.batch)
        tr = suite._trainer(case)
        row["metric"], row["metric_before"] = heldout_metric(tr)
        for _ in range(WARMUP_STEPS):
            tr.train_step()
        on_cuda = tr.device.type == "cuda"
        # on the GPU at least one epoch boundary too (the reshuffle); the dry run keeps to --steps
        n = max(args.steps, tr.steps_per_epoch + 5) if on_cuda else args.steps
        t_check = time.perf_counter()
        row.update(checked_steps(tr, n, debug=on_cuda))
        per_s = n / max(time.perf_counter() - t_check, 1e-9)
        # each timed run lasts about --seconds (at least --steps): a fast family's few hundred steps on a
        # GPU take a tenth of a second, too short to time
        speed_steps = max(args.steps, int(per_s * args.seconds))
        row["metric_after"] = heldout_metric(tr)[1]
        row["learned"] = row["metric_after"] < row["metric_before"]
        row.update(snapshot_check(tr))
        del tr
        cpu_case = case if device == "cpu" else CASES[fam](False, args.data_dir, "cpu")
        row.update(speed(case, cpu_case, speed_steps, args.cpu_steps, args.repeats))
        row.update(process_check(case, speed_steps, ENGINE_WARMUP))
        if "process_per_s" in row:
            row["ratio_process_engine"] = row["process_per_s"] / row["engine_per_s"]
    except Exception as exc:  # reported in the row; the other families still run
        row.update(error=_one_line(exc), error_where=_site(exc))
        print(f"  {fam}: FAILED: {row['error']} ({row['error_where']})", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
    finally:
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode(0)
            torch.cuda.empty_cache()
    row["seconds"] = time.perf_counter() - t0
    row["ok"] = ("error" not in row and row.get("sync") != "fail" and row.get("snapshot_numpy_only", False)
                 and ("process_skipped" in row or (row.get("process_snapshot_numpy_only", False)
                                                   and row.get("process_device", "").split(":")[0] == device)))
    return row


# -- report ----------------------------------------------------------------------------------------
def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def print_table(out: dict[str, Any]) -> None:
    dev = out["device"]
    print()
    print(f"{'family':<7} {'sync':<7} {'snap ms':>11} {'numpy':>5} {'engine/s':>10} {'cpu/s':>9} {'x cpu':>6} "
          f"{'bare/s':>10} {'eng/bare':>8} {'eng/trn':>7} {'trn/bare':>8} {'proc/s':>10} {'proc/eng':>8}  "
          f"{'held-out metric before -> after':<50} {'s':>5}")
    for r in out["families"]:
        if "error" in r:
            print(f"{r['family']:<7} ERROR   {r['error']}  [{r['error_where']}]")
            continue
        learn = (f"{r['metric']} {_f(r['metric_before'], '.4g')} -> {_f(r['metric_after'], '.4g')}"
                 f"{'' if r['learned'] else ' (NOT lower)'}")
        snap = f"{_f(r['snapshot_first_ms'], '.1f')}/{_f(r['snapshot_ms'], '.1f')}"
        print(f"{r['family']:<7} {r['sync']:<7} {snap:>11} "
              f"{'yes' if r['snapshot_numpy_only'] else 'NO':>5} {_f(r['engine_per_s'], ',.0f'):>10} "
              f"{_f(r['engine_cpu_per_s'], ',.0f'):>9} {_f(r['speedup_vs_cpu'], '.1f'):>6} "
              f"{_f(r['bare_per_s'], ',.0f'):>10} {_f(r['ratio_engine_bare'], '.3f'):>8} "
              f"{_f(r['ratio_engine_trainer'], '.3f'):>7} {_f(r['ratio_trainer_bare'], '.3f'):>8} "
              f"{_f(r.get('process_per_s'), ',.0f'):>10} {_f(r.get('ratio_process_engine'), '.3f'):>8}  {learn:<50} "
              f"{r['seconds']:>5.0f}")
    for r in out["families"]:
        if r.get("sync") == "fail":
            print(f"{r['family']}: a training step synchronised with the CPU at step {r['sync_step']}: "
                  f"{r['sync_error']}\n    at {r['sync_where']}")
        if "learned" in r and not r["learned"] and r["family"] in LEARNING_NOTES:
            print(f"{r['family']}: held-out {r['metric']} not lower; {LEARNING_NOTES[r['family']]}")
        if r.get("snapshot_not_numpy"):
            print(f"{r['family']}: the snapshot holds tensors: {'; '.join(r['snapshot_not_numpy'])}")
        if r.get("process_snapshot_not_numpy"):
            print(f"{r['family']}: the training process's snapshot holds tensors: "
                  f"{'; '.join(r['process_snapshot_not_numpy'])}")
        if r.get("process_skipped"):
            print(f"{r['family']}: not checked in a training process: {r['process_skipped']}")
        if "process_device" in r and r["process_device"].split(":")[0] != r["device"]:
            print(f"{r['family']}: the training process trained on {r['process_device']}, not {r['device']}")
    print(f"sync: no CPU-GPU synchronisation inside train_step (skipped on the CPU); snap ms: snapshot() first "
          f"call / median of the next; numpy:\nthe snapshot holds CPU numpy arrays only; engine/s: samples/s through "
          f"the engine on {dev}; cpu/s: the same on the CPU; x cpu: their ratio;\neng/bare: the engine over the "
          f"family's bare PyTorch loop on {dev} (target >= 0.95);\neng/trn: the engine over the family's train_step() "
          f"in a plain loop (the engine's own cost); trn/bare: that loop over the bare loop (the views' extra maths);\n"
          f"proc/s: samples/s in a training process on {dev}, as the app runs by default; proc/eng: over the engine")
    print(f"machine: {out['machine']}")
    print(f"{'all checks passed' if out['ok'] else 'SOME CHECKS FAILED'}; elapsed {out['elapsed_s']:.0f} s"
          + (" (dry run on the CPU)" if out["dry_run"] else ""))


def main(argv: list[str] | None = None) -> int:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(CASES), help=f"which families (default all: {','.join(CASES)})")
    ap.add_argument("--steps", type=int, default=500,
                    help="checked training steps per family, and steps per timed speed run (default 500)")
    ap.add_argument("--cpu-steps", type=int, default=None,
                    help="steps of the engine run on the CPU for the comparison (default steps/10, at least 5)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved engine/bare repeats (default 3)")
    ap.add_argument("--seconds", type=float, default=1.5,
                    help="about how long each timed speed run lasts, in steps of at least --steps (default 1.5)")
    ap.add_argument("--data-dir", help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                    help="cuda (default), or cpu: a dry run of everything but the sync check")
    ap.add_argument("--json", help="write the figures to this file as one JSON object")
    args = ap.parse_args(argv)
    wanted = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(wanted) - set(CASES))
    if unknown or not wanted:
        print(f"gpu_check: unknown families: {', '.join(unknown) or '(none given)'} (known: {', '.join(CASES)})",
              file=sys.stderr)
        return 2
    if (args.steps < 1 or args.repeats < 1 or (args.cpu_steps is not None and args.cpu_steps < 1)
            or not args.seconds >= 0):
        print("gpu_check: --steps, --cpu-steps and --repeats must be at least 1, --seconds at least 0", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: torch {torch.__version__} sees no CUDA device; run it on a machine with one, or pass "
              "--device cpu for a dry run on the CPU", file=sys.stderr)
        return 2
    if args.cpu_steps is None:
        args.cpu_steps = max(5, args.steps // 10)
    machine = suite.machine(args.device)
    if args.device == "cuda":
        machine.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    print(f"gpu_check on {args.device}: {machine}", flush=True)
    rows = []
    for fam in wanted:
        row = check_family(fam, args.device, args)
        rows.append(row)
        if "error" not in row:
            print(f"  {fam}: sync {row['sync']}, snapshot {row['snapshot_first_ms']:.1f} ms, "
                  f"{row['engine_per_s']:,.0f}/s on {args.device} vs {row['engine_cpu_per_s']:,.0f}/s on cpu, "
                  f"engine/bare {row['ratio_engine_bare']:.3f}, {row['metric']} {row['metric_before']:.4g} -> "
                  f"{row['metric_after']:.4g} ({row['seconds']:.0f} s)", flush=True)
    out: dict[str, Any] = {"machine": machine, "device": args.device, "dry_run": args.device == "cpu",
                           "steps": args.steps, "run_seconds": args.seconds, "cpu_steps": args.cpu_steps,
                           "repeats": args.repeats,
                           "data_dir": args.data_dir, "families": rows, "ok": all(r["ok"] for r in rows),
                           "elapsed_s": time.perf_counter() - t_start}
    print_table(out)
    if args.json:
        from explorer.core.atomic import atomic_write_json

        atomic_write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
