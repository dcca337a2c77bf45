"""Data-parallel training over local processes with torch's own machinery (``torch.distributed``).

One model is trained by N processes (ranks): every rank builds the same trainer from the same seed, so
they start from the same weights; the module the loss goes through is wrapped in torch's
DistributedDataParallel, which averages the gradients across the ranks during ``backward``; every rank
takes its own slice of each global mini-batch. With a mean loss, N ranks x B/N examples give the
gradient one process takes from the whole batch of B, so the weights follow the single-process run.

NCCL with one GPU per rank when the machine has the GPUs, gloo on the CPU otherwise. The processes are
started by ``torch.multiprocessing`` (spawn) and meet on a free 127.0.0.1 port, on loopback only on Linux
(``join_group``); a rank that fails ends the others (spawn terminates them) and the launch raises
:class:`RankFailed` with one line. Ctrl+C is the launching process's: it ends the ranks and raises
KeyboardInterrupt (see :func:`launch`).
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

INIT_TIMEOUT_S = 120  # how long a rank waits for the others (meeting, and every collective after)
FAMILIES = ("cnn", "fcn")  # the families whose trainers take a rank's shard and step through the wrapper


class RankFailed(RuntimeError):
    """A rank of a data-parallel run failed (its error, one line)."""


@dataclass(frozen=True)
class Plan:
    """How N ranks run: the backend and, with NCCL, that each rank takes the GPU of its own number."""

    world: int
    backend: str      # "nccl" or "gloo"
    cuda: bool

    def describe(self) -> str:
        where = f"{self.world} GPUs" if self.cuda else "the CPU (no GPUs for them)"
        return f"{self.world} ranks over {self.backend} on {where}"


def plan(world: int, device: str = "auto") -> Plan:
    """The backend for ``world`` ranks: NCCL when CUDA is asked for or ``auto`` finds it, gloo otherwise.
    ValueError (the message names ``--gpus``) for a count under 1 or over the GPUs there are."""
    if world < 1:
        raise ValueError(f"--gpus: {world} is not a number of processes (1 or more)")
    use_cuda = device in ("cuda", "auto") and torch.cuda.is_available() and dist.is_nccl_available()
    if device == "cuda" and not use_cuda:
        raise ValueError("--gpus: --device cuda asked for, but there is no CUDA GPU with NCCL here")
    if use_cuda:
        n = torch.cuda.device_count()
        if world > n:
            raise ValueError(f"--gpus: {world} asked for, this machine has {n} GPU{'s' if n != 1 else ''}")
        return Plan(world, "nccl", True)
    return Plan(world, "gloo", False)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the ranks to meet on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def join_group(rank: int, world: int, port: int, backend: str, timeout_s: float = INIT_TIMEOUT_S) -> None:
    """Join the default process group on 127.0.0.1:``port`` as ``rank`` of ``world``, on loopback only (on
    Linux, with torch 2.7 or newer).

    torch's ``tcp://`` meeting point listens on every interface of the machine (its store binds ``*``), and
    gloo's connections take the interface the host name resolves to: on a served network, anyone could
    reach the ranks. Here rank 0 hands the store a socket of its own bound to 127.0.0.1 and gloo is told to
    use the loopback interface (Linux; elsewhere, and with an older torch, the store is torch's own).

    ``timeout_s`` bounds every collective after; the meeting itself (the store, and the connections between
    the ranks) waits at least ``INIT_TIMEOUT_S``: a rank's start (Python, torch, a GPU's context) is not a
    step, and a short timeout asked for the steps made a follower that started slowly on a busy machine
    miss the meeting."""
    linux = sys.platform.startswith("linux")
    if linux:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    meeting = meeting_timeout(timeout_s)
    if rank == 0 and linux and _listens_on_a_given_socket():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(max(64, 2 * world))
            listen_fd = os.dup(sock.fileno())  # the store's (ours is closed on leaving the block)
            try:
                store = dist.TCPStore("127.0.0.1", port, world, is_master=True, timeout=meeting,
                                      master_listen_fd=listen_fd)
            except BaseException:
                os.close(listen_fd)
                raise
    else:
        store = dist.TCPStore("127.0.0.1", port, world, is_master=rank == 0, timeout=meeting)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=meeting)
    bound_steps(timeout_s)


def meeting_timeout(timeout_s: float) -> datetime.timedelta:
    """How long ranks wait for each other while a group forms: the step timeout, but never under
    ``INIT_TIMEOUT_S`` (see ``join_group``)."""
    return datetime.timedelta(seconds=max(timeout_s, INIT_TIMEOUT_S))


def _listens_on_a_given_socket() -> bool:
    """Whether torch's store listens on the socket it is handed (``master_listen_fd``): its default
    back end (libuv, since torch 2.4) ignored it before torch 2.7, and every rank then waited out the
    meeting. Older torch meets on its own socket (every interface), as ``tcp://`` does."""
    try:
        major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 7)


def bound_steps(timeout_s: float, group: Any = None) -> None:
    """Give a group made with the meeting's timeout (its ranks' connections take that long to open on a busy
    machine) the step timeout for every collective after. Torch's setter is private: without it the group
    keeps the meeting's, which is never shorter (a failure is noticed later, never wrongly)."""
    setter = getattr(dist.distributed_c10d, "_set_pg_timeout", None)
    if setter is None:
        return
    try:
        setter(datetime.timedelta(seconds=timeout_s), group)
    except (AssertionError, RuntimeError, TypeError, ValueError) as exc:  # a torch that changed it: keep the meeting's
        logging.getLogger(__name__).warning("the ranks' step timeout could not be set (%s): they wait %d s",
                                            exc, INIT_TIMEOUT_S)


def _rank_main(rank: int, the_plan: Plan, port: int, target: Callable[..., Any], payload: Any) -> None:
    """One rank: join the group, run ``target(rank, world, device, payload)``, leave the group."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    device = torch.device("cuda", rank) if the_plan.cuda else torch.device("cpu")
    if the_plan.cuda:
        torch.cuda.set_device(device)
    join_group(rank, the_plan.world, port, the_plan.backend)
    target(rank, the_plan.world, device, payload)
    dist.barrier()  # every rank done before any leaves
    sys.stdout.flush()
    sys.stderr.flush()
    # leave without tearing the group down from the interpreter's exit: gloo's threads, destroyed there while
    # still joinable, abort the process now and then ("terminate called without an active exception")
    os._exit(0)


def launch(the_plan: Plan, target: Callable[..., Any], payload: Any) -> None:
    """Run ``target(rank, world, device, payload)`` in ``the_plan.world`` processes; returns when all are
    done. ``target`` must be a module-level function (the processes import it). RankFailed when one fails.

    The ranks start with Ctrl+C ignored, and a Ctrl+C here ends them (KeyboardInterrupt once they have
    ended): a terminal sends it to its whole foreground process group, and each rank printed the traceback
    of a KeyboardInterrupt from wherever it was (torch's import, most often); sent to this process alone,
    the ranks trained on to the end, wrote the run and printed its result after the command had said
    "interrupted"."""
    with _ctrl_c_ignored():  # what a process starts with it inherits (Python leaves an ignored SIGINT so)
        context = mp.start_processes(_rank_main, args=(the_plan, free_port(), target, payload),
                                     nprocs=the_plan.world, join=False, start_method="spawn")
    try:
        while not context.join():
            pass
    except KeyboardInterrupt:
        with _ctrl_c_ignored():  # (a second Ctrl+C, a quick double press, would cut the ranks' ending short)
            _end(context.processes)
        raise
    except mp.ProcessRaisedException as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        raise RankFailed(f"a rank failed: {lines[-1] if lines else exc}") from None
    except mp.ProcessExitedException as exc:
        raise RankFailed(f"a rank failed: {exc}") from None


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """SIGINT ignored during the block (the main thread's handler put back after it); elsewhere, as it is."""
    previous = signal.getsignal(signal.SIGINT)  # (None: set outside Python, left alone)
    try:
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: its handler is not this thread's to change
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _end(processes: list[Any], grace_s: float = 10.0) -> None:
    """End the ranks: SIGTERM, then SIGKILL for one still there after ``grace_s``."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


def wrap(trainer: Any, rank: int, world: int, device: torch.device) -> None:
    """Make ``trainer`` (a MiniBatchTrainer, built from the seed on ``device``) one rank of the run: its
    step's module in DistributedDataParallel, its mini-batches this rank's shard. The trainer's own
    modules stay the plain ones (what is evaluated and saved)."""
    module = trainer.distributed_module()
    ids = [device.index] if device.type == "cuda" else None
    ddp = DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)
    trainer.set_shard(rank, world, ddp)


def is_main(rank: int) -> bool:
    """Rank 0 evaluates, prints and writes the run."""
    return rank == 0


__all__ = ["FAMILIES", "Plan", "RankFailed", "plan", "free_port", "join_group", "meeting_timeout", "bound_steps",
           "launch", "wrap", "is_main", "INIT_TIMEOUT_S"]
