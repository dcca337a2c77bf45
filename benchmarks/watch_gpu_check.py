"""Check ``explorer.watch`` on a CUDA model, headless (no Qt): snapshots and gradient norms equal those of
the same model on the CPU, and a snapshot leaves the CUDA random state, the train flags and the gradients
exactly as they were.

    python benchmarks/watch_gpu_check.py            # needs a CUDA device; exit 1 on a mismatch, 2 without one

Then the cost on each example's own loop: ``python benchmarks/watch_cost.py`` (the examples train on
CUDA when it is there).
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer.core.watch.discover import describe_model  # noqa: E402
from explorer.core.watch.gradients import grad_norms  # noqa: E402
from explorer.core.watch.snapshot import take_snapshot  # noqa: E402


def models() -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                        nn.Sigmoid(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 10), nn.Tanh())

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 24, num_layers=2, bidirectional=True, batch_first=True)
            self.gru = nn.GRU(48, 16, batch_first=True)
            self.head = nn.Linear(16, 5)

        def forward(self, x):
            return self.head(self.gru(self.lstm(x)[0])[0])

    seg = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1))
    return {"cnn": (cnn, torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))),
            "lstm+gru": (Tagger(), torch.randn(4, 30, 8), torch.randint(0, 5, (4, 30))),
            "segmentation": (seg, torch.randn(4, 3, 32, 32), torch.randint(0, 4, (4, 32, 32)))}


def check(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> list[str]:
    faults: list[str] = []
    cpu_model, gpu_model = model, copy.deepcopy(model).to(device)
    loss_fn = nn.CrossEntropyLoss()
    for m, xx, yy in ((cpu_model, x, y), (gpu_model, x.to(device), y.to(device))):
        out = m(xx)
        loss_fn(out.reshape(-1, out.shape[-1]) if out.dim() == 3 else out, yy.reshape(-1) if out.dim() == 3 else yy).backward()
    desc_cpu, desc_gpu = describe_model(cpu_model, x), describe_model(gpu_model, x.to(device))
    if desc_cpu["layers"] != desc_gpu["layers"]:
        faults.append(f"{name}: the layers described differ between CPU and CUDA")
    grads_before = [p.grad.clone() for p in gpu_model.parameters()]
    rng_state = (lambda: torch.cuda.get_rng_state(device)) if device.type == "cuda" else torch.get_rng_state
    rng_before = rng_state()
    flags_before = [m.training for m in gpu_model.modules()]
    a_cpu, s_cpu = take_snapshot(cpu_model, x, desc_cpu, target=y)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    a_gpu, s_gpu = take_snapshot(gpu_model, x.to(device), desc_gpu, target=y.to(device))
    seconds = time.perf_counter() - t0
    if not torch.equal(rng_state(), rng_before):
        faults.append(f"{name}: the snapshot moved the {device.type} random state")
    if [m.training for m in gpu_model.modules()] != flags_before:
        faults.append(f"{name}: the snapshot changed train flags")
    if not all(torch.equal(p.grad, g) for p, g in zip(gpu_model.parameters(), grads_before)):
        faults.append(f"{name}: the snapshot changed gradients")
    if set(a_cpu) != set(a_gpu):
        faults.append(f"{name}: arrays differ: {sorted(set(a_cpu) ^ set(a_gpu))}")
    for key in sorted(set(a_cpu) & set(a_gpu)):
        if not isinstance(a_gpu[key], np.ndarray):
            faults.append(f"{name}: {key} is a {type(a_gpu[key]).__name__}, not a numpy array")
        elif key.startswith("hist/"):
            # bins of values within float rounding of a boundary may differ: compare the totals
            if a_cpu[key][1].sum() != a_gpu[key][1].sum():
                faults.append(f"{name}: {key} counts differ in total")
        elif not np.allclose(a_cpu[key], a_gpu[key], atol=2e-4, rtol=1e-3):
            faults.append(f"{name}: {key} differs by {np.abs(a_cpu[key] - a_gpu[key]).max():.2e}")
    for key in s_cpu:
        if abs(s_cpu[key] - s_gpu.get(key, np.nan)) > 1e-3 or key not in s_gpu:
            faults.append(f"{name}: scalar {key} differs: {s_cpu[key]} vs {s_gpu.get(key)}")
    n_cpu = grad_norms(cpu_model, desc_cpu["grad_layers"])
    n_gpu = grad_norms(gpu_model, desc_gpu["grad_layers"])
    if not np.allclose(n_cpu, n_gpu, rtol=1e-3, atol=1e-6):
        faults.append(f"{name}: gradient norms differ by {np.nanmax(np.abs(n_cpu - n_gpu)):.2e}")
    print(f"{name}: {len(a_gpu)} arrays, {sum(a.nbytes for a in a_gpu.values()) / 1e3:.0f} kB, snapshot on CUDA "
          f"{1e3 * seconds:.1f} ms, {'ok' if not faults else 'FAILED'}", flush=True)
    return faults


def main() -> int:
    if "--device" in sys.argv and sys.argv[-1] == "cpu":  # a dry run of the script: the CPU against itself
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("watch_gpu_check: error: no CUDA device (--device cpu: a dry run on the CPU)", file=sys.stderr)
        return 2
    else:
        device = torch.device("cuda", torch.cuda.current_device())
    print(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}",
          flush=True)
    faults: list[str] = []
    for name, (model, x, y) in models().items():
        faults += check(name, model, x, y, device)
    for fault in faults:
        print("  " + fault)
    print("all equal" if not faults else f"{len(faults)} fault(s)")
    return 1 if faults else 0


if __name__ == "__main__":
    raise SystemExit(main())
