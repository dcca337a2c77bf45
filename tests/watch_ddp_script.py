"""A tiny DistributedDataParallel training, run by tests/test_watch_watcher.py under
``python -m torch.distributed.run --nproc_per_node=2 --standalone`` (gloo, CPU), watched with a folder:
only rank 0 serves and writes. Each rank writes ``rank<N>.json`` into OUT: what its watcher said, and
the gradient norms it saw at the first step (equal on both ranks: the norms after the all-reduce).

    python -m torch.distributed.run --nproc_per_node=2 --standalone tests/watch_ddp_script.py OUT
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402

import explorer  # noqa: E402

STEPS = 12


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    probe = torch.randn(3, 4)
    watcher = explorer.watch(ddp, probe, logdir=out / "run", name="ddp", optimizer=opt)
    first_norms = None
    for step in range(STEPS):
        gen = torch.Generator().manual_seed(100 + 1000 * rank + step)  # each rank its own batch
        x, y = torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)
        loss = ((ddp(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            first_norms = {name: float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in
                                                                             module.parameters(recurse=False)])))
                           for name, module in model.named_children() if list(module.parameters(recurse=False))}
        opt.step()
        watcher.step(loss=loss.item())
    info = {"rank": rank, "active": watcher.active, "address": watcher.address,
            "token_file": None if watcher.token_file is None else str(watcher.token_file),
            "logdir": None if watcher.logdir is None else str(watcher.logdir), "first_norms": first_norms}
    watcher.close()
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    dist.barrier()
    dist.destroy_process_group()
    leave_without_teardown()


def leave_without_teardown() -> None:
    """Exit now, skipping the interpreter's teardown: there torch's gloo threads, still joinable, abort a
    process now and then ("terminate called without an active exception", SIGABRT) even after
    destroy_process_group(); a bare DDP loop without this project does it too (about 1 run in 8 on a busy
    2-core machine). Everything this script writes is written and closed before."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
