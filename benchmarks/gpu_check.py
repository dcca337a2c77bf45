"""Check the CUDA path headless (no Qt needed): the RBM trains on the GPU, fast, without per-step syncs.

    python benchmarks/gpu_check.py [--data-dir DIR] [--steps 600] [--json FILE]

1. ``train_step`` runs under ``torch.cuda.set_sync_debug_mode("error")``: any operation that
   makes the CPU wait for the GPU (a ``.item()``, a ``.cpu()``) inside a training step raises.
2. The engine (background thread, metrics flushed in batches) trains the RBM 784-500, batch 100,
   CD-1 on cuda and on cpu; samples/s of each, and of a bare loop on cuda, are printed.
3. The held-out reconstruction error must fall.
Run it on a machine with a CUDA GPU; it exits 2 where torch sees none.
"""

from __future__ import annotations

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app runs (explorer/__init__.py), before torch loads

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from explorer.core.data import Dataset, load_dataset  # noqa: E402
from explorer.core.engine import TrainingSession  # noqa: E402
from explorer.core.rbm_trainer import RBMConfig, RBMTrainer  # noqa: E402


def mnist_or_lookalike(data_dir: str | None) -> tuple[Dataset, str]:
    if data_dir:
        try:
            return load_dataset("mnist", data_dir), f"MNIST from {data_dir}"
        except ValueError as exc:
            print(f"note: {exc}; using random data of the same shape", file=sys.stderr)
    rng = np.random.default_rng(0)
    x = rng.random((10000, 784), dtype=np.float32)
    return Dataset("mnist-shaped", x[:8000], None, x[8000:], None, (28, 28)), "random 28x28 data"


def engine_rate(ds: Dataset, device: str, steps: int) -> tuple[float, dict]:
    tr = RBMTrainer(RBMConfig(hidden=500, batch_size=100, k=1, lr=0.1, device=device), dataset=ds)
    s = TrainingSession(tr)
    try:
        s.step(20)
        s.wait()
        before = tr.evaluate()["heldout_recon_error"]
        t0 = time.perf_counter()
        s.step(steps)
        s.wait()
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        after = tr.evaluate()["heldout_recon_error"]
    finally:
        s.close()
    return steps * 100 / dt, {"recon_before": before, "recon_after": after}


def bare_rate(ds: Dataset, steps: int) -> float:
    """The same CD-1 maths in a plain loop on cuda."""
    dev = torch.device("cuda")
    g = torch.Generator(device=dev).manual_seed(0)
    x_all = torch.from_numpy(ds.train_x).to(dev)
    W = torch.randn(784, 500, device=dev, generator=g) * 0.01
    b = torch.zeros(784, device=dev)
    d = torch.zeros(500, device=dev)
    n = x_all.shape[0]
    errs = []

    def one(i: int) -> None:
        nonlocal W, b, d
        idx = torch.randint(0, n, (100,), device=dev, generator=g)
        x = (torch.rand(100, 784, device=dev, generator=g) < x_all[idx]).float()
        ph = torch.sigmoid(x @ W + d)
        h = (torch.rand(ph.shape, device=dev, generator=g) < ph).float()
        px = torch.sigmoid(h @ W.t() + b)
        xt = (torch.rand(px.shape, device=dev, generator=g) < px).float()
        pht = torch.sigmoid(xt @ W + d)
        ht = (torch.rand(pht.shape, device=dev, generator=g) < pht).float()
        W += 0.1 * (x.t() @ h - xt.t() @ ht) / 100
        b += 0.1 * (x - xt).mean(0)
        d += 0.1 * (h - ht).mean(0)
        errs.append(((x - px) ** 2).mean())

    for i in range(20):
        one(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        one(i)
        if len(errs) >= 50:
            torch.stack(errs).cpu()
            errs.clear()
    torch.cuda.synchronize()
    return steps * 100 / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device", file=sys.stderr)
        return 2
    ds, source = mnist_or_lookalike(args.data_dir)

    # 1. no CPU-GPU synchronisation inside a training step
    tr = RBMTrainer(RBMConfig(hidden=500, batch_size=100, device="cuda"), dataset=ds)
    tr.train_step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(tr.steps_per_epoch + 5):  # crosses an epoch boundary (reshuffle) too
            tr.train_step()
        no_sync = True
    except RuntimeError as exc:
        no_sync = False
        print(f"a training step synchronised with the CPU: {exc}", file=sys.stderr)
    finally:
        torch.cuda.set_sync_debug_mode(0)

    # 2. speed, interleaved, medians of 3
    rows: dict[str, list[float]] = {"engine_cuda": [], "bare_cuda": [], "engine_cpu": []}
    quality = {}
    for _ in range(3):
        r, quality = engine_rate(ds, "cuda", args.steps)
        rows["engine_cuda"].append(r)
        rows["bare_cuda"].append(bare_rate(ds, args.steps))
        rows["engine_cpu"].append(engine_rate(ds, "cpu", max(50, args.steps // 10))[0])
    med = {k: float(np.median(v)) for k, v in rows.items()}
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "data": source,
        "no_sync_in_train_step": no_sync,
        "samples_per_s": med,
        "ratio_engine_bare_cuda": med["engine_cuda"] / med["bare_cuda"],
        "speedup_cuda_vs_cpu": med["engine_cuda"] / med["engine_cpu"],
        **quality,
    }
    print(f"GPU: {result['device']}, torch {result['torch']}, data: {source}")
    print(f"no CPU-GPU sync inside train_step: {no_sync}")
    for k, v in med.items():
        print(f"  {k:12s} {v:12,.0f} samples/s   (runs: {', '.join(f'{x:,.0f}' for x in rows[k])})")
    print(f"engine/bare on cuda: {result['ratio_engine_bare_cuda']:.3f}; cuda vs cpu: "
          f"{result['speedup_cuda_vs_cpu']:.1f}x; held-out recon error {quality['recon_before']:.4f} -> "
          f"{quality['recon_after']:.4f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    ok = no_sync and quality["recon_after"] < quality["recon_before"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
