"""Watch a model trained with DistributedDataParallel: the digits CNN of ``watch_cnn_digits.py`` on
several processes, one per rank, which torchrun starts:

    torchrun --nproc_per_node=2 examples/watch_ddp.py

Each process (rank) trains on its own share of every epoch's batches; DistributedDataParallel averages
the gradients, so the ranks keep identical weights (each prints a checksum of its weights at the end to
show it). It uses NCCL with a GPU per rank where the machine has enough GPUs, gloo on the CPU otherwise.

Every rank calls ``explorer.watch(...)`` as a single-process script would; only rank 0 publishes, the
others' watchers do nothing, so one window attaches to the run:

    python -m explorer attach 127.0.0.1:PORT        (the port rank 0 prints)

The watched model is the plain network inside the DDP wrapper: the watcher's snapshots run it on rank 0
alone, and the wrapper's forward may talk to the other ranks. ``--control``, ``--logdir`` and
``--no-watch`` work as in the single-process examples.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn
from example_options import folder, host_port, int_range, positive_float
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler
from watch_cnn_digits import DigitsCNN, NoWatch, accuracy, load_digits

import explorer


def weights_checksum(model: nn.Module) -> str:
    """A digest of every parameter's bytes: equal on all ranks when they hold the same weights."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main(argv=None):
    p = argparse.ArgumentParser(description="\n\n".join(__doc__.split("\n\n")[:2]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int_range(1), default=15)
    p.add_argument("--steps", type=int_range(0), default=0, help="stop after this many steps (0: run all the epochs)")
    p.add_argument("--batch-size", type=int_range(1), default=32, help="per rank")
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--listen", type=host_port, default="127.0.0.1:0",
                   help="HOST:PORT the window attaches to (port 0: a free one)")
    p.add_argument("--logdir", type=folder, default=None, help="also write what is watched to this folder")
    p.add_argument("--control", action="store_true", help="let the window pause the loop and set the learning rate")
    p.add_argument("--no-watch", action="store_true", help="train without watching (the bare loop's speed)")
    args = p.parse_args(argv)
    if not {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} <= os.environ.keys():  # what torchrun sets
        command = shlex.join(["torchrun", "--nproc_per_node=2", sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
        p.error(f"start it with torchrun, which runs one process per rank: {command}")

    # NCCL wants a GPU of its own for each process of this machine; otherwise gloo on the CPU
    cuda = torch.cuda.device_count() >= int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    torch.manual_seed(args.seed)
    x_train, y_train, x_test, y_test = load_digits()
    x_test, y_test = x_test.to(device), y_test.to(device)
    dataset = TensorDataset(x_train, y_train)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, sampler=sampler)
    net = DigitsCNN().to(device)
    model = DistributedDataParallel(net, device_ids=[local_rank] if cuda else None)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    probe, probe_target = x_test[:16], y_test[:16]

    watcher = NoWatch() if args.no_watch else explorer.watch(
        net, probe=probe, target=probe_target, optimizer=opt, control=args.control,
        listen=args.listen, logdir=args.logdir, name="digits CNN (DDP)")
    step, train_time = 0, 0.0
    with watcher:
        for epoch in range(1, args.epochs + 1):
            sampler.set_epoch(epoch)
            start = time.perf_counter()
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                loss = loss_fn(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                watcher.step(loss=loss.item())
                step += 1
                if step == args.steps:
                    break
            train_time += time.perf_counter() - start
            if rank == 0:
                acc = accuracy(net, x_test, y_test)
                print(f"epoch {epoch}: step {step}, loss {loss.item():.3f}, test accuracy {acc:.1%}", flush=True)
            if step == args.steps:
                break
    if rank == 0:
        print(f"test accuracy {acc:.1%} after {step} steps on {world} ranks; {step / train_time:.1f} steps/s "
              f"({train_time:.1f} s training{', not watched' if args.no_watch else ''})", flush=True)
    dist.barrier()  # every rank has finished its last step: the weights are final everywhere
    # one write of the whole line: print() writes the text and its newline apart, and with unbuffered output
    # (PYTHONUNBUFFERED, a launcher's) two ranks' lines came out as one
    sys.stdout.write(f"rank {rank} of {world}: {step} steps, weights checksum {weights_checksum(net)}\n")
    sys.stdout.flush()
    dist.destroy_process_group()
    # leave now, skipping the interpreter's teardown: there gloo's threads (still joinable even after
    # destroy_process_group) abort a process now and then ("terminate called without an active exception")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
