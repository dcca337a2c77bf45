"""How fast does the engine train an RBM, compared with a bare PyTorch loop and scikit-learn?

What it measures
----------------
An RBM 784-500 (``--hidden``), mini-batch 100 (``--batch-size``), CD-1 with the lecture's maths:
sample h^ ~ p(h|x), x~ ~ p(x|h^), h~ ~ p(h|x~); W += lr (x'h^ - x~'h~)/B, biases likewise;
binary inputs drawn fresh per batch from the grey levels (``binarize='sample'``); the training
reconstruction error mean((x - p(x|h^))^2) computed every step and kept as a tensor.
Samples per second (steps x batch / wall time) of these variants, all in one process:

* ``engine``            RBMTrainer inside a TrainingSession on its background thread, headless
                         (nobody subscribed): ``session.step(N)`` then ``session.wait()``; the clock
                         runs from the command until the thread is idle again. This includes what
                         the engine always does: the batched metric copies and the held-out
                         evaluations at epoch ends (which the engine caps at 2% of training time).
* ``engine+snapshots``  the same with ``session.subscribe()`` at 20 Hz: snapshots (filters, probes,
                         dream chains) are computed on the training thread, as with the GUI open.
* ``engine-noeval``     diagnostic: the headless engine with ``trainer.evaluate`` stubbed out, which
                         separates the engine's own per-step cost from the epoch-end evaluation.
* ``engine+contend``    (``--contend``) the engine while the *main* thread runs a torch matmul loop,
                         to show what happens when two threads each drive an OpenMP pool on a small
                         CPU (oversubscription) - the main thread must stay idle during training.
* ``bare``              a plain PyTorch loop in the main thread: the same maths, ops and random
                         generator (numpy's PCG64 on the CPU, as the engine uses),
                         written independently of ``explorer.core.families.rbm.model``, same data tensor, same
                         per-epoch reshuffle, same input sampling, same per-step recon error.
* ``sklearn``           ``sklearn.neural_network.BernoulliRBM.partial_fit`` on the same number of
                         batches (float64 inputs prepared outside the clock). On a GPU run, where
                         the step count is sized for the GPU, sklearn does at most ~4 s worth of them.

Every variant is warmed up first; repeats are interleaved (engine, snapshots, bare, sklearn, engine,
...) and the table reports the median over repeats, the min..max range and ratios of medians.
On Linux the script also reports how much CPU *other* processes (and the hypervisor, as steal
time) took while it ran, from /proc/stat minus its own CPU time, and warns when that was more
than a few percent: on a 2-core machine someone else's test run makes the figures meaningless.
By default the number of steps is chosen from the warm-up so that one variant takes ~4 s per repeat,
rounded up to whole epochs (so every run does the same number of epoch-end evaluations).

Running it
----------
    python benchmarks/rbm_speed.py --data-dir ~/data/mnist             # real MNIST (t10k split 8000/2000)
    python benchmarks/rbm_speed.py --quick                              # random data, < ~40 s
    python benchmarks/rbm_speed.py --data-dir DIR --contend             # add the oversubscription row
    python benchmarks/rbm_speed.py --device cuda --json out.json

Without ``--data-dir`` (or when the folder holds no MNIST IDX files) it uses seeded random data of
MNIST's shape (8000 training + 2000 held-out rows of 784 values in [0, 1]) and says so.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/cli/__init__.py), before torch loads

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Allow running from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import sync  # noqa: E402

from explorer.core.data.datasets import Dataset, find_idx_files, load_dataset  # noqa: E402
from explorer.core.engine.devices import resolve_device  # noqa: E402
from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer  # noqa: E402

LR = 0.1
SEED = 0
TARGET_SECONDS = 4.0      # per variant per repeat when --steps is not given
WAIT_POLL_S = 0.002       # session.wait() polling period (its default 50 ms would blur short runs)


# -- data ---------------------------------------------------------------------------------------

def load_data(data_dir: str | None) -> tuple[Dataset, str, str | None]:
    """(dataset, description, data_dir used); MNIST from ``data_dir`` if it has it, else random data."""
    if data_dir and find_idx_files("mnist", data_dir):
        ds = load_dataset("mnist", data_dir, seed=SEED)
        return ds, f"MNIST from {data_dir} ({ds.train_x.shape[0]} train / {ds.test_x.shape[0]} held-out)", data_dir
    rng = np.random.default_rng(SEED)
    x = rng.random((10000, 784), dtype=np.float32)
    ds = Dataset(name="random", train_x=np.ascontiguousarray(x[:8000]), train_y=None,
                 test_x=np.ascontiguousarray(x[8000:]), test_y=None, image_shape=(28, 28),
                 note="seeded uniform random data of MNIST's shape")
    why = f"no MNIST files in {data_dir}" if data_dir else "no --data-dir given"
    return ds, f"RANDOM data, uniform [0,1], 8000 train / 2000 held-out x 784, seed {SEED} ({why})", None


# -- variants -----------------------------------------------------------------------------------

def make_session(ds: Dataset, data_dir: str | None, args, device: torch.device,
                 snapshots: bool = False, evaluate: bool = True) -> TrainingSession:
    cfg = RBMConfig(dataset="mnist" if ds.name == "mnist" else "random", data_dir=data_dir,
                    hidden=args.hidden, batch_size=args.batch_size, k=1, lr=LR, binarize="sample",
                    seed=SEED, device=device.type)
    trainer = RBMTrainer(cfg, dataset=ds)
    if not evaluate:
        trainer.evaluate = lambda: {}  # diagnostic only: the engine's own cost without the held-out metrics
    session = TrainingSession(trainer, name="bench-snap" if snapshots else "bench")
    if snapshots:
        session.set_snapshot_rate(20.0)
        session.subscribe()
    return session


def run_engine(session: TrainingSession, steps: int, device: torch.device,
               contend: bool = False) -> tuple[float, dict]:
    """Seconds for ``steps`` engine steps, from the command until the training thread is idle."""
    if not session.wait(timeout=60):
        raise RuntimeError("session did not become idle before the run")
    extra: dict = {}
    step0 = session.trainer.step
    if contend:
        a = torch.randn(256, 256, device=device)
        n_mm = 0
        t0 = time.perf_counter()
        session.step(steps)
        while not session.wait(timeout=0):  # non-blocking idle check
            a = torch.tanh(a @ a)           # the main thread keeps the torch pool busy
            n_mm += 1
        sync(device)
        dt = time.perf_counter() - t0
        extra["main_thread_matmuls"] = n_mm
    else:
        t0 = time.perf_counter()
        session.step(steps)
        session.wait(poll=WAIT_POLL_S)      # main thread sleeps while the training thread works
        sync(device)
        dt = time.perf_counter() - t0
    if session.error:
        raise RuntimeError(f"engine failed: {session.error}")
    done = session.trainer.step - step0
    if done != steps:
        raise RuntimeError(f"engine did {done} steps, expected {steps}")
    # metrics rows not yet copied to the CPU when wait() returned (on a GPU they are flushed every
    # 50 steps and at epoch ends; 0 means the last step's work had been synchronised by the engine itself)
    # (steps, not rows: a long run's rows stand for windows of steps, explorer.core.engine.metrics.RowWindows)
    rows = session.metrics.steps
    extra["unflushed_metrics"] = session.trainer.step - (int(rows[-1]["step"]) if rows else 0)
    return dt, extra


class BareCD:
    """CD-1 as a plain loop: the lecture's maths with the same torch ops as the engine, no engine."""

    def __init__(self, ds: Dataset, n_hidden: int, batch_size: int, device: torch.device):
        self.device = device
        self.B = batch_size
        self.data = torch.from_numpy(ds.train_x).to(device)   # same grey-level tensor as the trainer
        self.N, nv = self.data.shape
        init = torch.Generator().manual_seed(SEED)
        self.W = (torch.randn(nv, n_hidden, generator=init) * 0.01).to(device)
        p = self.data.mean(0).clamp(0.01, 0.99)
        self.b = torch.log(p / (1 - p))
        self.d = torch.zeros(n_hidden, device=device)
        self.gen = torch.Generator(device=device).manual_seed(SEED + 1)
        self.rng = np.random.default_rng(SEED + 1)
        self.order = torch.randperm(self.N, generator=self.gen, device=device)
        self.pos = 0
        self.errors: list[torch.Tensor] = []

    def bernoulli(self, p: torch.Tensor) -> torch.Tensor:
        # the same generators as the engine: numpy's PCG64 on the CPU (faster than torch's), torch's on a GPU
        if p.device.type == "cpu":
            return torch.from_numpy(self.rng.random(tuple(p.shape), dtype=np.float32)).lt_(p)
        return torch.rand(p.shape, generator=self.gen, device=p.device, dtype=p.dtype).lt_(p)

    @torch.no_grad()
    def step(self) -> None:
        idx = self.order[self.pos:self.pos + self.B]
        self.pos += self.B
        if self.pos >= self.N:
            self.order = torch.randperm(self.N, generator=self.gen, device=self.device)
            self.pos = 0
        x = self.bernoulli(self.data.index_select(0, idx))           # binary inputs, fresh each batch
        W, b, d = self.W, self.b, self.d
        h_hat = self.bernoulli(torch.sigmoid(torch.addmm(d, x, W)))  # h^ ~ p(h|x)
        px = torch.sigmoid(torch.addmm(b, h_hat, W.t()))             # p(x|h^)
        x_t = self.bernoulli(px)                                     # x~ ~ p(x|h^)
        h_t = self.bernoulli(torch.sigmoid(torch.addmm(d, x_t, W)))  # h~ ~ p(h|x~)
        s = LR / x.shape[0]                                          # w += lr/B (x'h^ - x~'h~), in place
        W.addmm_(x.t(), h_hat, alpha=s).addmm_(x_t.t(), h_t, alpha=-s)
        b.add_(x.sum(0) - x_t.sum(0), alpha=s)
        d.add_(h_hat.sum(0) - h_t.sum(0), alpha=s)
        self.errors.append(torch.nn.functional.mse_loss(px, x))    # kept as a tensor, like the engine

    def run(self, steps: int) -> float:
        self.errors = []
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        dt = time.perf_counter() - t0
        errs = torch.stack(self.errors).cpu()
        if not torch.isfinite(errs).all():
            raise RuntimeError("bare loop diverged")
        return dt


class SklearnRBM:
    def __init__(self, ds: Dataset, n_hidden: int, batch_size: int):
        from sklearn.neural_network import BernoulliRBM

        self.model = BernoulliRBM(n_components=n_hidden, batch_size=batch_size, learning_rate=LR,
                                  n_iter=1, random_state=SEED)
        self.B = batch_size
        # float64 and shuffled once, outside the clock; batches are contiguous slices (no copies)
        perm = np.random.default_rng(SEED).permutation(ds.train_x.shape[0])
        self.X = np.ascontiguousarray(ds.train_x[perm], dtype=np.float64)
        self.n_batches = self.X.shape[0] // batch_size
        self.i = 0

    def run(self, steps: int) -> float:
        batches = []
        for _ in range(steps):
            batches.append(self.X[self.i * self.B:(self.i + 1) * self.B])
            self.i = (self.i + 1) % self.n_batches
        fit = self.model.partial_fit
        t0 = time.perf_counter()
        for xb in batches:
            fit(xb)
        return time.perf_counter() - t0


# -- reporting ----------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    rates: list[float] = field(default_factory=list)   # samples/s per repeat
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")


class CpuWatch:
    """CPU seconds used by other processes (and stolen by the hypervisor) since ``start()``; Linux only."""

    def __init__(self) -> None:
        self._t0 = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
        steal = fields[7] if len(fields) > 7 else 0
        t = os.times()
        return ((user + nice + system + irq + softirq) / hz, steal / hz, t.user + t.system, time.monotonic())

    def report(self) -> dict | None:
        t1 = self._read()
        if t1 is None or self._t0 is None:
            return None
        busy, steal, own, wall = (b - a for a, b in zip(self._t0, t1))
        others = max(0.0, busy - own)
        return {"wall_s": wall, "own_cpu_s": own, "others_cpu_s": others, "steal_s": steal,
                "others_cores": others / wall if wall > 0 else 0.0,
                "steal_cores": steal / wall if wall > 0 else 0.0}


def time_evaluate(trainer: RBMTrainer, n: int = 3) -> float:
    """Median seconds of one ``trainer.evaluate()`` (what the engine runs at epoch ends, within its 2% cap)."""
    out = []
    for _ in range(n):
        sync(trainer.device)
        t0 = time.perf_counter()
        trainer.evaluate()
        sync(trainer.device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def machine_info(device: torch.device, train_thread_threads: int | None) -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_main": torch.get_num_threads(),
        "torch_threads_training_thread": train_thread_threads,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        import sklearn
        from threadpoolctl import threadpool_info

        info["sklearn"] = sklearn.__version__
        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} x{p.get('num_threads')}"
                        for p in threadpool_info()]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def threads_on_training_thread(session: TrainingSession) -> int:
    box: list[int] = []
    session.call_in_thread(lambda: box.append(torch.get_num_threads()))
    session.wait(timeout=10, poll=WAIT_POLL_S)
    return box[0] if box else -1


def print_table(results: list[Result], bare: Result, sk: Result | None, batch: int, steps: int) -> None:
    print()
    print(f"{'variant':<18} {'samples/s':>10} {'min..max':>17} {'ms/step':>8} {'/bare':>6} {'/sklearn':>8}")
    print("-" * 72)
    for r in results:
        if not r.rates:
            continue
        med = r.median
        rng = f"{min(r.rates):,.0f}..{max(r.rates):,.0f}"
        ms = 1000.0 * batch / med
        vs_bare = med / bare.median
        vs_sk = f"{med / sk.median:8.2f}" if sk and sk.rates else f"{'-':>8}"
        print(f"{r.name:<18} {med:>10,.0f} {rng:>17} {ms:>8.2f} {vs_bare:>6.3f} {vs_sk}")
        if r.note:
            print(f"{'':<18} ({r.note})")
    print("-" * 72)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default=None, help="folder with MNIST IDX files (else random data)")
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--steps", type=int, default=None,
                    help="steps per variant per repeat (default: ~4 s worth, whole epochs)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, --quick 2)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed steps per variant before timing")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats (< ~40 s)")
    ap.add_argument("--contend", action="store_true",
                    help="add a row: engine while the main thread runs torch matmuls")
    ap.add_argument("--no-diagnostic", action="store_true", help="skip the engine-noeval row")
    ap.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn variant")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    repeats = args.repeats or (2 if args.quick else 3)
    target_s = 1.2 if args.quick else TARGET_SECONDS
    warmup = max(1, args.warmup)

    ds, data_desc, data_dir = load_data(args.data_dir)

    # build every variant, then warm each up
    engine = make_session(ds, data_dir, args, device)
    snap = make_session(ds, data_dir, args, device, snapshots=True)
    noeval = None if args.no_diagnostic else make_session(ds, data_dir, args, device, evaluate=False)
    contend = make_session(ds, data_dir, args, device) if args.contend else None
    sessions = [s for s in (engine, snap, noeval, contend) if s is not None]
    bare = BareCD(ds, args.hidden, args.batch_size, device)
    if not args.no_sklearn and importlib.util.find_spec("sklearn") is None:
        print("scikit-learn is not installed (pip install \"network-explorer[bench]\"): its row is skipped")
        args.no_sklearn = True
    sk = None if args.no_sklearn else SklearnRBM(ds, args.hidden, args.batch_size)
    spe = engine.trainer.steps_per_epoch
    train_threads = threads_on_training_thread(engine)

    for s in sessions:
        run_engine(s, warmup, device)
        while s.choosing_threads:  # the engine times its first steps at 1 and 2 threads, once a session
            run_engine(s, 10, device)
    bare.run(warmup)
    t_bare = bare.run(warmup) / warmup  # second pass: warm
    t_sk = sk.run(warmup) / warmup if sk is not None else float("nan")
    t_eval = time_evaluate(engine.trainer)  # evaluate() does not train, so it changes no variant

    if args.steps:
        steps = args.steps
    else:
        want = max(spe, int(target_s / t_bare))
        steps = -(-want // spe) * spe  # whole epochs: the same number of epoch-end evaluations each run
    sk_steps = steps
    if sk is not None and not args.steps and device.type != "cpu" and t_sk * steps > 2.5 * target_s:
        sk_steps = max(spe, int(target_s / t_sk))  # GPU-sized step counts would take minutes on the CPU
    info = machine_info(device, train_threads)

    print("RBM training speed: engine vs bare PyTorch loop vs scikit-learn")
    print(f"  model   : RBM {ds.n_visible}-{args.hidden}, CD-1, batch {args.batch_size}, lr {LR}, "
          f"binarize='sample'")
    print(f"  data    : {data_desc}")
    usable = "" if info["cpus_usable"] == info["cpu_count"] else f" ({info['cpus_usable']} usable)"
    print(f"  machine : {info['cpu_count']} cores{usable}, torch {info['torch']}, device {info['device']}"
          + (f" ({info['gpu']})" if "gpu" in info else "")
          + f", sklearn {info.get('sklearn', '?')}")
    print(f"  threads : torch.get_num_threads() = {info['torch_threads_main']} (main), "
          f"{info['torch_threads_training_thread']} (training thread); "
          f"BLAS/OpenMP pools: {', '.join(info.get('blas', [])) or '?'}")
    print(f"  run     : {steps} steps (= {steps / spe:g} epochs of {spe} steps) x {repeats} repeats, "
          f"interleaved, after {warmup} warm-up steps each"
          + (f"; sklearn {sk_steps} steps" if sk_steps != steps else ""))
    print(f"  warm-up : bare {1000 * t_bare:.2f} ms/step; trainer.evaluate() {1000 * t_eval:.1f} ms "
          f"= {100 * t_eval / (spe * t_bare):.1f}% of a bare epoch ({spe * t_bare:.2f} s); the engine evaluates "
          "at an epoch end only while evaluations stay under 2% of its training time")
    sys.stdout.flush()
    watch = CpuWatch()

    samples = steps * args.batch_size
    r_engine = Result("engine", note="headless; epoch-end held-out evaluations as the engine does them "
                                     "(capped at 2% of training time)")
    r_snap = Result("engine+snapshots", note="subscribed, 20 Hz snapshots on the training thread")
    r_noeval = Result("engine-noeval", note="diagnostic: engine with trainer.evaluate stubbed out")
    r_contend = Result("engine+contend", note="main thread runs 256x256 torch matmuls meanwhile")
    r_bare = Result("bare", note="plain loop in the main thread, no evaluation")
    r_sk = Result("sklearn", note="BernoulliRBM.partial_fit, float64")
    snaps_per_s, mm_per_s, unflushed = [], [], []
    for rep in range(repeats):
        dt, extra = run_engine(engine, steps, device)
        r_engine.rates.append(samples / dt)
        unflushed.append(extra["unflushed_metrics"])
        seq0 = snap.latest_snapshot().seq if snap.latest_snapshot() else 0
        dt, _ = run_engine(snap, steps, device)
        r_snap.rates.append(samples / dt)
        snaps_per_s.append((snap.latest_snapshot().seq - seq0) / dt)
        if noeval is not None:
            dt, _ = run_engine(noeval, steps, device)
            r_noeval.rates.append(samples / dt)
        if contend is not None:
            dt, extra = run_engine(contend, steps, device, contend=True)
            r_contend.rates.append(samples / dt)
            mm_per_s.append(extra["main_thread_matmuls"] / dt)
        r_bare.rates.append(samples / bare.run(steps))
        if sk is not None:
            r_sk.rates.append(sk_steps * args.batch_size / sk.run(sk_steps))
        line = "  ".join(f"{r.name} {r.rates[-1]:,.0f}" for r in
                         (r_engine, r_snap, r_noeval, r_contend, r_bare, r_sk) if len(r.rates) == rep + 1)
        print(f"  repeat {rep + 1}/{repeats}: {line}  samples/s")
        sys.stdout.flush()
    cpu = watch.report()
    r_snap.note += f"; {statistics.median(snaps_per_s):.1f} snapshots/s achieved"
    if mm_per_s:
        r_contend.note += f" ({statistics.median(mm_per_s):,.0f} matmuls/s)"

    rows = [r for r in (r_engine, r_snap, r_noeval, r_contend, r_bare, r_sk) if r.rates]
    print_table(rows, r_bare, r_sk if r_sk.rates else None, args.batch_size, steps)
    ratio_eb = r_engine.median / r_bare.median
    ratio_es = r_engine.median / r_sk.median if r_sk.rates else float("nan")
    ratio_sb = r_snap.median / r_bare.median
    print(f"engine/bare = {ratio_eb:.3f} (target >= 0.95: {'ok' if ratio_eb >= 0.95 else 'BELOW'})   "
          f"engine/sklearn = {ratio_es:.2f} (target >= 2: {'ok' if ratio_es >= 2.0 else 'BELOW'})   "
          f"engine+snapshots/bare = {ratio_sb:.3f}")
    if r_noeval.rates:
        print(f"engine-noeval/bare = {r_noeval.median / r_bare.median:.3f} (engine's own overhead);  "
              f"engine/engine-noeval = {r_engine.median / r_noeval.median:.3f} (cost of the epoch-end evaluation)")
    if r_contend.rates:
        print(f"engine+contend/engine = {r_contend.median / r_engine.median:.3f} "
              "(main thread running torch ops while the training thread trains)")
    if device.type != "cpu":
        print(f"metrics rows not yet flushed to the CPU when wait() returned: {unflushed} "
              "(0 = the engine had synchronised the device itself; torch.cuda.synchronize() is called anyway)")
    if cpu is not None:
        busy = cpu["others_cores"] + cpu["steal_cores"] > 0.05
        print(f"other processes used {cpu['others_cores']:.2f} cores and the hypervisor stole "
              f"{cpu['steal_cores']:.2f} cores on average during the timed runs ({cpu['wall_s']:.0f} s)"
              + ("   WARNING: the machine was not quiet, rerun for reliable figures" if busy else ""))

    for s in sessions:
        s.close()

    if args.json:
        info["interference"] = cpu
        out = {
            "engine_per_s": r_engine.median,
            "engine_snapshots_per_s": r_snap.median,
            "bare_per_s": r_bare.median,
            "sklearn_per_s": r_sk.median if r_sk.rates else None,
            "ratio_engine_bare": ratio_eb,
            "ratio_engine_sklearn": ratio_es if r_sk.rates else None,
            "ratio_snapshots_bare": ratio_sb,
            "machine": info,
            "data": data_desc,
            "steps": steps,
            "sklearn_steps": sk_steps,
            "repeats": repeats,
            "batch_size": args.batch_size,
            "hidden": args.hidden,
            "evaluate_s": t_eval,
            "rates": {r.name: r.rates for r in rows},
        }
        if r_noeval.rates:
            out["engine_noeval_per_s"] = r_noeval.median
        if r_contend.rates:
            out["engine_contend_per_s"] = r_contend.median
            out["ratio_contend_engine"] = r_contend.median / r_engine.median
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
