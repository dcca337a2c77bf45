"""One benchmark suite: training speed against bare PyTorch, GUI responsiveness, start-up, memory.

    python benchmarks/run.py [--data-dir DIR] [--quick] [--json FILE] [--families rbm,dae,...] [--device cpu]
                             [--no-gui] [--no-watch]

For every family that exists it prints one table row: training samples/s through the app's engine
(its background thread, views hidden) against a bare PyTorch loop with the same model, batch and
maths in the same process (each family's ``benchmarks/<family>_speed.py`` holds its bare loop; it
runs at 1 thread and at all of torch's threads, and the faster is the reference: a small model's
bare loop runs 2-3x faster on one thread here, and the engine chooses its count by timing),
the ratio, and the same ratio with the family's panel visible and refreshing at 20/s in the real
main window (offscreen unless a display is set; the window also spends up to 5% of the training
time on held-out evaluations for its curves): as the app runs by default (views paced, training in
a separate process), with training on a thread of the window's process, and with pacing off. Then: the RBM against scikit-learn's BernoulliRBM, the
GUI's responsiveness while training (lateness of a 10 ms GUI-thread timer, p50/p99, and the
redraws per second reached), start-up (``python -m explorer`` to the first painted window, to the
main window's first paint once torch is loaded, and the torch import alone), and memory (resident size over a training run with views refreshing; growth
after warm-up as a fraction), and what ``explorer.watch`` costs each example's own loop
(``benchmarks/watch_cost.py``). ``--json FILE`` writes the same figures as one object.

Compare ratios, not absolute rates: on a shared machine the absolute figures move from run to run.
Variants are interleaved (engine, bare, bare, engine, ...: a steady drift in the machine's speed
cancels) and the median of the repeats is reported, with the range in the JSON. The engine is timed
in its steady state: its warm-up runs past the first epoch end, so a new session's first held-out
evaluation (always done; later ones are held to 2% of the training time) does not weigh on a window
of a second or two. The evaluations in the timed window count, and ``eval_share`` says what they took.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# OpenMP waits passively, as in the app (explorer/cli/__init__.py), before torch loads: OpenMP reads it once.
# (From 2026-12-05 until the twenty-second session this was left to `import explorer`, which no longer sets
# it, and came after torch: the suite's figures of those days ran with OpenMP's default waiting.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import sync  # noqa: E402

from explorer.core.engine.session import TrainingSession  # noqa: E402
from explorer.core.engine.threads import candidate_counts  # noqa: E402
from explorer.core.families.registry import FAMILIES, make_trainer  # noqa: E402


# -- what each family brings ----------------------------------------------------------------------
@dataclass
class Case:
    """One family's benchmark: its app configuration, and a bare loop with the same maths."""

    family: str           # the engine's family name (FAMILIES key)
    label: str            # the table's name for it
    describe: str         # model, batch, data
    config: Any           # the app's configuration object
    bare: Callable[[int], float]   # bare(steps) -> samples/s
    batch: int


def _mnist_or_none(data_dir: str | None):
    from explorer.core.data.datasets import find_idx_files

    return data_dir if data_dir and find_idx_files("mnist", data_dir) else None


def case_rbm(quick: bool, data_dir: str | None, device: str) -> Case:
    import rbm_speed

    from explorer.core.families.rbm.trainer import RBMConfig

    ds, source, used = rbm_speed.load_data(data_dir)
    cfg = RBMConfig(dataset="mnist" if used else "random", data_dir=used, hidden=500, batch_size=100, k=1,
                    lr=rbm_speed.LR, seed=rbm_speed.SEED, device=device)
    cfg._dataset = ds  # the suite hands the same loaded data to the engine (see _trainer)
    bare = rbm_speed.BareCD(ds, 500, 100, torch.device(device))
    return Case("rbm", "RBM 784-500 CD-1", f"batch 100, {source.split(' (')[0]}", cfg,
                lambda steps: steps * 100 / bare.run(steps), 100)


def case_dae(quick: bool, data_dir: str | None, device: str) -> Case:
    import dae_speed

    from explorer.core.families.autoencoder.trainer import AutoencoderConfig

    ds, source = dae_speed.data(_mnist_or_none(data_dir))
    cfg = AutoencoderConfig(dataset="mnist" if ds.name == "mnist" else "digits", data_dir=_mnist_or_none(data_dir),
                            hidden=dae_speed.HIDDEN, batch_size=dae_speed.BATCH, noise="gaussian",
                            noise_level=dae_speed.NOISE, lr=dae_speed.LR, momentum=dae_speed.MOMENTUM, device=device)
    cfg._dataset = ds
    return Case("autoencoder", "DAE 784-256-784", f"batch {dae_speed.BATCH}, gaussian 0.3, {source}", cfg,
                lambda steps: dae_speed.bare_rate(ds, device, steps), dae_speed.BATCH)


def case_mlp(quick: bool, data_dir: str | None, device: str) -> Case:
    import mlp_speed

    cfg, ds, source = mlp_speed.config_and_data(_mnist_or_none(data_dir), device)
    cfg._dataset = ds
    return Case("mlp", "deep MLP (sigmoid)", f"{mlp_speed.describe(cfg, ds)}, {source}", cfg,
                lambda steps: mlp_speed.bare_rate(cfg, ds, steps), cfg.batch_size)


def _optional_case(module: str) -> Callable[[bool, str | None, str], Case]:
    """A family whose benchmark module provides ``suite_case(quick, data_dir, device) -> dict``."""

    def make(quick: bool, data_dir: str | None, device: str) -> Case:
        mod = importlib.import_module(module)
        d = mod.suite_case(quick=quick, data_dir=data_dir, device=device)
        cfg = d["config"]
        if d.get("dataset") is not None:
            cfg._dataset = d["dataset"]
        return Case(d["family"], d["label"], d["describe"], cfg, d["bare"], d["batch"])

    return make


CASES: dict[str, Callable[[bool, str | None, str], Case]] = {
    "rbm": case_rbm,
    "dae": case_dae,
    "mlp": case_mlp,
    "cnn": _optional_case("cnn_speed"),
    "fcn": _optional_case("fcn_speed"),
    "lstm": _optional_case("lstm_speed"),
}


# -- measuring -------------------------------------------------------------------------------------
def _trainer(case: Case):
    cfg = case.config
    ds = getattr(cfg, "_dataset", None)
    trainer_cls = FAMILIES[case.family].trainer_cls
    if ds is not None:
        return trainer_cls(cfg, dataset=ds)
    return make_trainer(case.family, cfg)


def engine_rate(case: Case, steps: int, warmup: int | None = None, info: list[dict] | None = None) -> float:
    """samples/s of ``steps`` steps through a TrainingSession (views hidden: nobody subscribes).

    The warm-up runs past the engine's choice of its thread count (about 0.5 s of steps timed at
    each count, once per session) and past the first epoch end (``warmup`` steps if given): the engine holds its
    held-out evaluations to 2% of the training time, but a new session's first one is always done,
    and in a window of a second or two it would weigh 5-15% (the FCN's takes 170 ms), which no
    longer run pays. The evaluations that fall in the timed window are kept. ``info`` gets
    ``eval_share`` (the share of the window they took) and ``threads`` (the count the engine chose:
    it times its first steps at 1 and at all threads, see ``explorer/core/engine/threads.py``).
    """
    tr = _trainer(case)
    s = TrainingSession(tr, name="bench")
    try:
        s.step(warmup if warmup is not None else tr.steps_per_epoch + max(5, steps // 10))
        s.wait(timeout=600)
        while warmup is None and s.choosing_threads:  # and past the timing of its thread counts
            s.step(10)
            s.wait(timeout=600)
        sync(tr.device)
        eval0 = s._eval_seconds
        t0 = time.perf_counter()
        s.step(steps)
        s.wait(timeout=600)  # returns as the training thread goes idle (it notifies), no polling
        sync(tr.device)
        dt = time.perf_counter() - t0
        if s.error:
            raise RuntimeError(f"{case.label}: {s.error}")
        if info is not None:
            info.append({"eval_share": (s._eval_seconds - eval0) / dt, "threads": s.threads_in_use})
        return steps * tr.batch_size / dt
    finally:
        s.close()


def open_window(case: Case, hz: float = 20.0, process: bool = False):
    """The real main window on the family's panel (throw-away settings), shown at 1600x1000, training
    on the case's own data; returns ``(app, window)``. ``process``: Training > Train in a separate process
    (the process loads the data from the configuration: MNIST from ``--data-dir``, or a built-in set)."""
    from PySide6 import QtCore

    from explorer.gui.app import make_app
    from explorer.gui.main_window import WINDOW_EVAL_FRACTION, MainWindow
    from explorer.gui.settings import TRAINING_ENV

    app = make_app()
    tmp = tempfile.mkdtemp(prefix="explorer-bench-")
    settings = QtCore.QSettings(os.path.join(tmp, "s.ini"), QtCore.QSettings.Format.IniFormat)
    settings.setValue("training/process", process)
    os.environ.pop(TRAINING_ENV, None)
    # the configuration alone (a dataclass copy drops the data set the suite attached to it)
    win = MainWindow(dataclasses.replace(case.config), settings=settings)
    ds = getattr(case.config, "_dataset", None)
    if ds is not None and win.session is not None and not process:  # the same data the other variants train on
        win._set_session(TrainingSession(_trainer(case), snapshot_hz=hz, eval_fraction=WINDOW_EVAL_FRACTION))
    if win.session is None:
        raise RuntimeError(f"{case.label}: the window could not start: {win.notice.label.text()}")
    win.resize(1600, 1000)
    win.show()
    return app, win


def visible_run(case: Case, seconds: float, hz: float = 20.0, warmup_s: float = 2.0,
                memory: bool = False, paced: bool = True, process: bool = True,
                keep_core: bool = True) -> dict[str, float]:
    """Train in the real main window with the family's panel visible, refreshing at ``hz``; ``paced``:
    Training > Pace the views (the default), else every snapshot is drawn up to ``hz``; ``process``:
    Training > Train in a separate process (the default), else on a thread of the window's process;
    ``keep_core``: Training > Keep a core for the window (the default)."""
    from PySide6 import QtCore

    app, win = open_window(case, hz, process=process)
    win.set_refresh_rate(hz)
    win.act_pace_views.setChecked(paced)
    win._apply_pacing()
    win.act_keep_core.setChecked(keep_core)
    win._apply_threads()

    def drawn() -> int:  # live snapshots drawn (a panel may draw one in parts: LivePanel.snapshot_parts)
        return win.panel.snapshots_drawn
    res: dict[str, float] = {}
    late: list[float] = []
    rss: list[tuple[float, float]] = []
    probe = QtCore.QTimer()
    probe.setInterval(10)
    last = [time.perf_counter()]

    def tick() -> None:  # a 10 ms GUI-thread timer: how late does it fire while training and redrawing?
        now = time.perf_counter()
        late.append(max(0.0, (now - last[0]) * 1000 - 10))
        last[0] = now

    probe.timeout.connect(tick)
    mem_timer = QtCore.QTimer()
    mem_timer.setInterval(1000)
    timeline_mb: list[float] = []  # what the timeline holds (bounded, 256 MB by default) at each sample

    child = getattr(getattr(win.session, "_process", None), "pid", None)  # a training process counts too

    def sample_memory() -> None:
        rss.append((time.perf_counter(), _rss_mb() + (_rss_mb(child) if child else 0.0)))
        timeline_mb.append(win.panel.timeline.bytes_used / 2**20)

    mem_timer.timeout.connect(sample_memory)

    def begin() -> None:
        res.update(s0=win.session.trainer.step, t0=time.perf_counter(), r0=win.redraws, d0=drawn(),
                   snap0=win.session.snapshot_seconds)
        late.clear()
        last[0] = time.perf_counter()
        probe.start()
        if memory:
            mem_timer.start()

    def end() -> None:
        dt = time.perf_counter() - res["t0"]
        tr = win.session.trainer
        res["samples_per_s"] = (tr.step - res["s0"]) * tr.batch_size / dt
        # what taking the snapshots cost training, a share of the time (training in a process: paced to at most 5%)
        res["snapshot_share"] = (win.session.snapshot_seconds - res.pop("snap0")) / dt
        res["refresh_per_s"] = (win.redraws - res["r0"]) / dt
        res["snapshots_drawn_per_s"] = (drawn() - res["d0"]) / dt
        q = sorted(late)
        res["timer_late_p50_ms"] = statistics.median(q) if q else 0.0
        res["timer_late_p99_ms"] = q[int(0.99 * (len(q) - 1))] if q else 0.0
        probe.stop()
        mem_timer.stop()
        app.quit()

    QtCore.QTimer.singleShot(300, win.toggle_play)
    QtCore.QTimer.singleShot(int((0.3 + warmup_s) * 1000), begin)
    QtCore.QTimer.singleShot(int((0.3 + warmup_s + seconds) * 1000), end)
    app.exec()
    error = win.session.error if win.session is not None else None
    win.close()
    if error:
        raise RuntimeError(f"{case.label}: {error}")
    if memory and len(rss) >= 4:
        after_warmup = rss[max(1, len(rss) // 10)][1]  # the first tenth of the run is warm-up
        res["rss_start_mb"] = after_warmup
        res["rss_end_mb"] = rss[-1][1]
        res["rss_max_mb"] = max(r for _, r in rss)
        res["memory_growth"] = (rss[-1][1] - after_warmup) / after_warmup
        # the timeline keeps views up to its bound: growth outside it is what a leak would show
        i = max(1, len(rss) // 10)
        net0, net1 = rss[i][1] - timeline_mb[i], rss[-1][1] - timeline_mb[-1]
        res["timeline_start_mb"], res["timeline_end_mb"] = timeline_mb[i], timeline_mb[-1]
        res["memory_growth_excluding_timeline"] = (net1 - net0) / net0
    return res


def _rss_mb(pid: int | None = None) -> float:
    """Resident size in MB of this process, or of process ``pid``."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sklearn_ratio(case: Case, steps: int, repeats: int) -> dict[str, float] | None:
    """The RBM 784-500 through the engine against scikit-learn's BernoulliRBM, batch 100."""
    try:
        import rbm_speed

        sk = rbm_speed.SklearnRBM(case.config._dataset, 500, 100)
    except ImportError:  # scikit-learn is optional: pip install "network-explorer[bench]"
        return None
    sk.run(5)
    eng, skl, info = [], [], []
    for r in range(repeats):  # engine, sklearn, sklearn, engine, ...
        for which in (("engine", "sklearn") if r % 2 == 0 else ("sklearn", "engine")):
            if which == "engine":
                eng.append(engine_rate(case, steps, info=info))
            else:
                skl.append(steps * 100 / sk.run(steps))
    e, s = statistics.median(eng), statistics.median(skl)
    # the engine's thread choice in each session: scikit-learn's BLAS always uses every core, and the
    # engine at one thread read 1.61x, at two 1.88x (tuning off, 4 interleaved rounds, 2026-11-27)
    return {"engine_per_s": e, "sklearn_per_s": s, "ratio": e / s, "steps": steps, "repeats": repeats,
            "engine_range": [min(eng), max(eng)], "sklearn_range": [min(skl), max(skl)],
            "engine_threads": [i["threads"] for i in info]}


def startup_seconds(repeats: int) -> dict[str, float]:
    """From launching ``python -m explorer`` to its first painted window (the start-up window, shown while
    torch loads on a thread) and to the main window's first paint; the torch import alone."""
    # a fresh settings folder and cache: no saved layout, no autosave from an earlier run to offer back
    env = {**os.environ, "XDG_CONFIG_HOME": tempfile.mkdtemp(prefix="explorer-bench-cfg-"),
           "NETWORK_EXPLORER_CACHE": tempfile.mkdtemp(prefix="explorer-bench-cache-")}
    times, ready, torch_times = [], [], []
    for _ in range(repeats):
        out = os.path.join(tempfile.mkdtemp(prefix="explorer-bench-"), "painted")
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "explorer"], cwd=ROOT, timeout=120, capture_output=True, text=True,
                           env={**env, "NETWORK_EXPLORER_STARTUP_PROBE": out})
        if r.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"start-up probe failed: {r.stderr.strip().splitlines()[-1:] or r.returncode}")
        with open(out) as f:
            painted = json.load(f)
        times.append(painted["window"] - t0)
        ready.append(painted["ready"] - t0)
        r = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import torch; "
                            "print(time.perf_counter() - t)"], capture_output=True, text=True, timeout=120)
        torch_times.append(float(r.stdout.strip()))
    return {"startup_s": statistics.median(times), "startup_ready_s": statistics.median(ready),
            "torch_import_s": statistics.median(torch_times)}


def machine(device: str) -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "torch": torch.__version__, "device": device,
                            "torch_threads": torch.get_num_threads(), "python": sys.version.split()[0]}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return info


# -- the suite -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", help="folder with the MNIST IDX files (else data of the same shape)")
    ap.add_argument("--quick", action="store_true", help="a rough version of everything in about a minute")
    ap.add_argument("--json", help="write the figures to this file as one JSON object")
    ap.add_argument("--families", default=",".join(CASES), help=f"which rows (default all: {','.join(CASES)})")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, --quick 1)")
    ap.add_argument("--visible-seconds", type=float, default=None, help="seconds per visible run (default 8, quick 3)")
    ap.add_argument("--memory-seconds", type=float, default=None,
                    help="length of the memory run with views refreshing (default 300, quick 10)")
    ap.add_argument("--no-gui", action="store_true", help="skip everything that opens a window (GPU machines)")
    ap.add_argument("--no-watch", action="store_true",
                    help="skip what explorer.watch costs the examples' own loops (benchmarks/watch_cost.py)")
    args = ap.parse_args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    for option, value in (("--visible-seconds", args.visible_seconds), ("--memory-seconds", args.memory_seconds),
                          ("--repeats", args.repeats)):
        if value is not None and not value > 0:  # (0 read as "the default" before: a 300-second run)
            print(f"run.py: error: {option}: {value} is not a positive number", file=sys.stderr)
            return 2
    vis_s = args.visible_seconds or (3.0 if quick else 8.0)
    mem_s = args.memory_seconds or (10.0 if quick else 300.0)
    out: dict[str, Any] = {"machine": machine(args.device), "quick": quick, "rows": []}
    wanted = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = set(wanted) - set(CASES)
    if unknown:
        print(f"unknown families: {', '.join(sorted(unknown))} (known: {', '.join(CASES)})", file=sys.stderr)
        return 2
    rbm_case = None
    print(f"Network Explorer benchmark suite: {out['machine']}", flush=True)
    for fam in wanted:
        try:
            case = CASES[fam](quick, args.data_dir, args.device)
        except ImportError as exc:
            print(f"  {fam}: skipped ({exc})", flush=True)
            continue
        if fam == "rbm":
            rbm_case = case
        steps = _steps_for(case, quick)
        # the bare loop at each thread count the engine may choose from; the fastest is the reference
        counts = candidate_counts(torch.get_num_threads())
        eng, info = [], []
        bare: dict[int, list[float]] = {n: [] for n in counts}
        variants = ["engine", *counts]
        for r in range(repeats):  # engine, bare..., bare..., engine, ...: a drift in the machine's speed cancels
            for which in (variants if r % 2 == 0 else variants[::-1]):
                if which == "engine":
                    eng.append(engine_rate(case, steps, info=info))
                else:
                    bare[which].append(bare_at(case, steps, which))
        bare_med = {n: statistics.median(v) for n, v in bare.items()}
        best = max(bare_med, key=bare_med.get)
        row: dict[str, Any] = {"family": fam, "model": case.label, "setup": case.describe,
                               "engine_per_s": statistics.median(eng), "bare_per_s": bare_med[best],
                               "bare_threads": best, "bare_per_s_by_threads": {str(n): v for n, v in bare_med.items()},
                               "engine_threads": [i["threads"] for i in info],
                               "steps": steps, "repeats": repeats,
                               "eval_share": statistics.median(i["eval_share"] for i in info),
                               "engine_range": [min(eng), max(eng)], "bare_range": [min(bare[best]), max(bare[best])]}
        row["ratio"] = row["engine_per_s"] / row["bare_per_s"]
        if not args.no_gui:
            # the bare loop just before and just after each window run: this machine's speed drifts by
            # 10-30% within a minute, so the ratio divides by the bare speed of the same moment
            # as the app runs by default (paced, in a training process), then each setting off in turn
            for paced, process, suffix in ((True, True, ""), (True, False, "_thread"), (False, True, "_unpaced")):
                before = bare_at(case, steps, best)
                vis = visible_run(case, vis_s, paced=paced, process=process)
                bare_then = (before + bare_at(case, steps, best)) / 2
                row[f"visible_per_s{suffix}"] = vis["samples_per_s"]
                row[f"ratio_visible{suffix}"] = vis["samples_per_s"] / bare_then
                row[f"refresh_per_s{suffix}"] = vis["refresh_per_s"]
                row[f"snapshots_drawn_per_s{suffix}"] = vis["snapshots_drawn_per_s"]
                row[f"snapshot_share{suffix}"] = vis["snapshot_share"]
                row[f"timer_late_p99_ms{suffix}"] = vis["timer_late_p99_ms"]
        out["rows"].append(row)
        print(f"  {fam}: engine {row['engine_per_s']:,.0f}/s, bare {row['bare_per_s']:,.0f}/s, "
              f"ratio {row['ratio']:.3f} ({steps} steps a window; engine on {'/'.join(map(str, row['engine_threads']))} threads, "
              f"bare fastest on {best}: {', '.join(f'{n}: {v:,.0f}' for n, v in bare_med.items())}; "
              f"evaluations {row['eval_share']:.1%} of the engine's time)" + (f", visible {row['ratio_visible']:.3f} "
                                             f"({row['ratio_visible_thread']:.3f} on a thread, "
                                             f"{row['ratio_visible_unpaced']:.3f} unpaced)"
                                             if "ratio_visible" in row else ""), flush=True)
    if rbm_case is not None:
        sk = sklearn_ratio(rbm_case, _steps_for(rbm_case, quick), max(repeats, 1 if quick else 3))
        if sk is not None:
            out["sklearn_rbm_ratio"] = sk["ratio"]
            out["sklearn_rbm"] = sk
    if not args.no_watch:
        # a user's own script, watched: its loop's speed bare, watched alone and with a viewer (watch_cost.py)
        import watch_cost

        print("explorer.watch in the examples' own loops (benchmarks/watch_cost.py):", flush=True)
        out["watch"] = watch_cost.measure(list(watch_cost.EXAMPLES), repeats=repeats)
    if not args.no_gui:
        gui_case = rbm_case or case_rbm(quick, args.data_dir, args.device)
        # the window's responsiveness: every snapshot asked for (pacing off), so the refresh rate is
        # what the window can draw; then the long memory run as the app runs by default (paced)
        unpaced = visible_run(gui_case, vis_s, paced=False)
        vis = visible_run(gui_case, mem_s, memory=True)
        keys = ("timer_late_p50_ms", "timer_late_p99_ms", "refresh_per_s", "snapshots_drawn_per_s")
        out["gui"] = {"family": "rbm", "refresh_target_per_s": 20.0, **{k: unpaced[k] for k in keys},
                      **{f"paced_{k}": vis[k] for k in keys}}
        out["memory_growth"] = vis.get("memory_growth")
        out["memory_growth_excluding_timeline"] = vis.get("memory_growth_excluding_timeline")
        out["memory"] = {k: vis[k] for k in ("rss_start_mb", "rss_end_mb", "rss_max_mb", "timeline_start_mb",
                                             "timeline_end_mb") if k in vis}
        out["memory"]["seconds"] = mem_s
        out.update(startup_seconds(1 if quick else 3))
    print_table(out)
    if args.json:
        from explorer.core.atomic import atomic_write_json

        atomic_write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


def on_plain_thread(fn: Callable[..., float], *args: Any) -> float:
    """Run a bare loop on a plain thread, as the engine trains on one: OpenMP's thread settings are per
    thread, so a loop on the main thread would not run with the same thread team as the engine's."""
    import threading

    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn(*args))
        except BaseException as exc:  # handed back to the caller
            box.append(exc)

    t = threading.Thread(target=run, name="bare-loop")
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def bare_at(case: Case, steps: int, threads: int) -> float:
    """The family's bare loop on a plain thread with ``threads`` intra-op threads (samples/s)."""
    def run() -> float:
        torch.set_num_threads(threads)  # for this thread only: OpenMP keeps it per thread
        return case.bare(steps)

    return on_plain_thread(run)


def serve_bare(conn, family: str, data_dir: str | None, threads: int) -> None:
    """A family's bare loop as a server, in a child process or on a thread: it answers "ready" once
    warmed up, then samples/s for each number of steps it receives; None ends it."""
    torch.set_num_threads(threads)
    case = CASES[family](False, data_dir, "cpu")
    case.bare(5)  # warm-up
    conn.send("ready")
    while True:
        steps = conn.recv()
        if steps is None:
            return
        conn.send(case.bare(steps))


def _steps_for(case: Case, quick: bool) -> int:
    """Enough steps for about a second or two of training per variant (a quarter with --quick).

    Timed at each thread count the rows compare, twice, and the fastest counts: at torch's default of
    two threads a busy second core (another program) made the deep MLP's 10 timed steps take 100 ms
    each, and the timed windows then held 17 steps, a seventh of an epoch, where one held-out evaluation
    weighed 28% of the engine's time (2026-12-05)."""
    counts = candidate_counts(torch.get_num_threads())
    rate = max(bare_at(case, 10, n) for n in counts for _ in range(2))  # samples/s; each call warms up first
    per_step = case.batch / max(rate, 1e-9)
    seconds = 0.5 if quick else 2.0
    return int(min(5000, max(10, seconds / per_step)))


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def print_table(out: dict[str, Any]) -> None:
    print()
    groups = (("", "default"), ("_thread", "on a thread"), ("_unpaced", "unpaced"))
    print(f"{'':<30} {'':>10} {'':>10} {'hidden':>6}" + "".join(f" | {title:^24}" for _, title in groups))
    print(f"{'family':<7} {'model':<22} {'engine/s':>10} {'bare/s':>10} {'ratio':>6}"
          + f" | {'visible':>7} {'views/s':>7} {'p99 ms':>8}" * len(groups))
    for r in out["rows"]:
        print(f"{r['family']:<7} {r['model'][:22]:<22} {_f(r['engine_per_s'], ',.0f'):>10} "
              f"{_f(r['bare_per_s'], ',.0f'):>10} {_f(r['ratio'], '.3f'):>6}"
              + "".join(f" | {_f(r.get('ratio_visible' + k), '.3f'):>7} {_f(r.get('snapshots_drawn_per_s' + k), '.1f'):>7}"
                        f" {_f(r.get('timer_late_p99_ms' + k), '.0f'):>8}" for k, _ in groups))
    print("visible: samples/s with the panel visible / the bare loop's around it; views/s: snapshots drawn a second")
    print("default: paced views, training in a separate process; on a thread: paced, training on a thread of the "
          "window's process; unpaced: every snapshot drawn, in a separate process")
    print("targets (the performance issue's): ratio >= 1.0 (views hidden), visible >= 0.95, views >= 20/s, "
          "timer late p99 < 16 ms")
    if "sklearn_rbm_ratio" in out:
        print(f"RBM 784-500 engine / scikit-learn BernoulliRBM: {out['sklearn_rbm_ratio']:.2f}x (target >= 2)")
    if "gui" in out:
        g = out["gui"]
        print(f"GUI while training (RBM panel, 20/s asked, unpaced): timer late p50 {g['timer_late_p50_ms']:.1f} ms, "
              f"p99 {g['timer_late_p99_ms']:.1f} ms, {g['refresh_per_s']:.1f} redraws/s "
              f"({g['snapshots_drawn_per_s']:.1f} snapshots drawn/s); paced: p99 {g['paced_timer_late_p99_ms']:.1f} ms, "
              f"{g['paced_refresh_per_s']:.1f} redraws/s ({g['paced_snapshots_drawn_per_s']:.1f} snapshots drawn/s)")
    if out.get("memory_growth") is not None:
        m = out["memory"]
        print(f"memory over {m['seconds']:.0f} s with views refreshing: {m['rss_start_mb']:.0f} MB after warm-up -> "
              f"{m['rss_end_mb']:.0f} MB ({100 * out['memory_growth']:+.1f}%, target <= +5%); the timeline held "
              f"{m.get('timeline_start_mb', 0):.0f} -> {m.get('timeline_end_mb', 0):.0f} MB of its bound, "
              f"growth without it {100 * (out.get('memory_growth_excluding_timeline') or 0):+.1f}%")
    if "startup_s" in out:
        print(f"start-up to first painted window: {out['startup_s']:.2f} s (target < 3 s); main window painted "
              f"(torch loaded): {out['startup_ready_s']:.2f} s; torch import alone {out['torch_import_s']:.2f} s")
    print(f"machine: {out['machine']}")


if __name__ == "__main__":
    sys.exit(main())
