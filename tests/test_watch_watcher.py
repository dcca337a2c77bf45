"""The watcher in the user's script (explorer.watch, explorer.core.watch.watcher), end to end over loopback
with the wire's client: the description in the welcome, snapshots with their arrays, metric rows and
gradient norms; pausing, stepping and resuming the loop from a window; the learning rate; the viewer
role; receptive fields; faults that leave the loop running; closing at exit; the path with nobody
watching, which does no tensor work; a folder; and DistributedDataParallel, where only rank 0 watches.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

import explorer
from explorer.core.watch import watcher as watcher_module
from explorer.core.watch.folder import ENDED_FILE, METRICS_FILE, SNAPSHOT_DIR, WATCH_FILE, FolderSource
from explorer.core.watch.pacing import Pacer
from explorer.core.wire.auth import read_token_file
from explorer.core.wire.client import FrameClient
from explorer.core.wire.frame import WireError

ROOT = Path(__file__).resolve().parents[1]
TICK_S = watcher_module.TICK_S


class TinyNet(nn.Module):
    """A small CNN for 8x8 one-channel pictures, whose forward can be made to fail in eval mode (as a
    snapshot runs it) while training goes on."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64, 10)
        self.fail_in_eval = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail_in_eval and not self.training:
            raise RuntimeError("the probe went wrong")
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 1, 8, 8), torch.randint(0, 10, (n,))


class Loop:
    """The user's training loop on a thread of its own: real steps, then ``watcher.step(loss=...)``."""

    def __init__(self, watcher, model: nn.Module, opt, pause_s: float = 0.003) -> None:
        self.watcher, self.model, self.opt, self.pause_s = watcher, model, opt, pause_s
        self.steps_done = 0
        self.in_step = False
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watch-test-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                x, y = batch()
                loss = nn.functional.cross_entropy(self.model(x), y)
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.in_step = True
                self.watcher.step(loss=loss.item())
                self.in_step = False
                self.steps_done += 1
                time.sleep(self.pause_s)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            self.error = exc

    def wait_steps(self, n: int, timeout: float = 10.0) -> None:
        target = self.steps_done + n
        deadline = time.monotonic() + timeout
        while self.steps_done < target:
            assert time.monotonic() < deadline, f"the loop made {self.steps_done} steps, not {target}"
            time.sleep(0.005)

    def finish(self, watcher=None) -> None:
        self.stop.set()
        if watcher is not None:
            if not watcher._pause_wanted:  # a running loop ends within its step: closed after it, not during it
                self.thread.join(2)        # (a step whose row is added after close is, rightly, not sent)
            watcher.close()  # also lets a paused loop go
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.error is None, self.error


@pytest.fixture(autouse=True)
def runtime(tmp_path, monkeypatch):
    """Token files go to a folder of the test's own."""
    folder = tmp_path / "runtime"
    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(folder))
    return folder


@pytest.fixture
def setup():
    """(model, optimizer, probe), made with a fixed seed; the watchers and loops made are closed after."""
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return model, opt, torch.randn(3, 1, 8, 8)


@pytest.fixture
def closing():
    """Watchers, clients and loops to close at the end of a test, whatever it asserted."""
    things: list = []
    yield things
    for thing in reversed(things):
        if isinstance(thing, Loop):
            thing.stop.set()
    for thing in reversed(things):
        thing.finish() if isinstance(thing, Loop) else thing.close()


def connect(watcher, closing, role: str = "control", token: str | None = None) -> FrameClient:
    client = FrameClient(*watcher.address, token=token or watcher.token, role=role)
    closing.append(client)
    client.connect()
    return client


def collect(client: FrameClient, until, timeout: float = 10.0) -> list:
    """Frames from ``client`` until ``until(frames)`` holds; fails the test after ``timeout`` seconds."""
    frames: list = []
    deadline = time.monotonic() + timeout
    while not until(frames):
        assert time.monotonic() < deadline, f"waited in vain; got {[f.kind for f in frames][-30:]}"
        frame = client.frames(0.05)
        if frame is not None:
            frames.append(frame)
    return frames


def read_to_end(client: FrameClient, timeout: float = 10.0) -> list:
    """Every frame until the stream has ended."""
    frames: list = []
    deadline = time.monotonic() + timeout
    while True:
        frame = client.frames(0.05)
        if frame is not None:
            frames.append(frame)
        elif client.closed:
            return frames
        assert time.monotonic() < deadline, f"the stream did not end; got {[f.kind for f in frames][-30:]}"


def rows_of(frames) -> list[dict]:
    return [row for f in frames if f.kind == "metrics" for row in f.fields["rows"]]


def snapshots_of(frames) -> list:
    return [f for f in frames if f.kind == "snapshot"]


def notices_of(frames) -> list[str]:
    return [f.fields["text"] for f in frames if f.kind == "notice"]


def states_of(frames) -> list[str]:
    return [f.fields["state"] for f in frames if f.kind == "state"]


# -- what a window gets ---------------------------------------------------------------------------------------

def test_a_window_gets_the_description_snapshots_with_their_arrays_curves_and_gradient_norms(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, optimizer=opt, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    desc = client.welcome["model"]
    assert client.welcome["role"] == "viewer"  # control=False: the control token is read-only too
    assert desc["name"] == "TinyNet" and desc["control"] is False and desc["hparams"]["lr"] == 0.1
    assert [layer["name"] for layer in desc["layers"]] == ["conv", "relu", "pool", "fc"]
    assert desc["grad_layers"] == ["conv", "fc"] and desc["input_shape"] == [3, 1, 8, 8]
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    client.send("command", {"cmd": "snapshot"})
    frames = collect(client, lambda fs: snapshots_of(fs) and any("grad/conv" in r for r in rows_of(fs))
                     and len([r for r in rows_of(fs) if "loss" in r]) >= 5)
    snap = snapshots_of(frames)[0]
    assert set(snap.fields) == {"step", "epoch", "time", "scalars"}
    assert snap.fields["step"] >= 1 and snap.fields["epoch"] == 0 and "loss" in snap.fields["scalars"]
    assert snap.arrays["input"].shape == (1, 8, 8)
    np.testing.assert_allclose(snap.arrays["input"], probe[0].numpy())
    assert snap.arrays["weight/conv"].shape == (4, 1, 3, 3) and snap.arrays["act/conv"].shape[0] == 4
    assert snap.arrays["grad_norms"].dtype == np.float32 and snap.arrays["grad_norms"].shape == (2,)
    assert np.isfinite(snap.arrays["grad_norms"]).all()
    loss_rows = [r for r in rows_of(frames) if "loss" in r]
    assert [r["step"] for r in loss_rows] == list(range(1, len(loss_rows) + 1))
    assert all(set(r) == {"step", "time", "loss"} for r in loss_rows)
    assert all(b["time"] >= a["time"] for a, b in zip(loss_rows, loss_rows[1:]))
    grad_row = next(r for r in rows_of(frames) if "grad/conv" in r)
    assert set(grad_row) == {"step", "grad/conv", "grad/fc"} and grad_row["grad/fc"] > 0
    assert states_of(frames)[0] == "running"
    loop.finish(watcher)
    frames = read_to_end(client)
    assert states_of(frames)[-1] == "ended" and frames[-1].kind == "bye"
    assert client.closed_reason == "the training script ended"


def test_the_line_on_stderr_names_the_address_and_the_token_file_which_is_removed_at_close(setup, capsys, runtime):
    model, opt, probe = setup
    with explorer.watch(model, probe) as watcher:
        err = capsys.readouterr().err
        match = re.fullmatch(r"explorer: watching TinyNet on 127\.0\.0\.1:(\d+) \(token in (.+)\)\n", err)
        assert match is not None, err
        path = Path(match.group(2))
        assert int(match.group(1)) == watcher.address[1] and path == watcher.token_file
        assert path.parent == runtime and path.name == f"watch-{watcher.address[1]}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        info = read_token_file(path)
        assert info["token"] == watcher.token and info["port"] == watcher.address[1]
        assert info["pid"] == os.getpid() and info["name"] == "TinyNet" and "viewer_token" not in info
        watcher.step(loss=1.0)
    assert not path.exists()
    watcher.step(loss=2.0)  # closed: nothing, no error
    watcher.close()
    assert capsys.readouterr().err == ""


# -- the window's commands ------------------------------------------------------------------------------------

def test_a_pause_blocks_the_loop_inside_step_until_play_and_step_n_runs_exactly_n(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, optimizer=opt, control=True, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    assert client.welcome["role"] == "control" and client.welcome["model"]["control"] is True
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    loop.wait_steps(5)
    client.send("command", {"cmd": "pause"})
    collect(client, lambda fs: "paused" in states_of(fs))
    paused_at = loop.steps_done
    time.sleep(0.5)
    assert loop.steps_done == paused_at and loop.in_step  # blocked inside watcher.step()

    # a paused run still answers for snapshots
    client.send("command", {"cmd": "snapshot"})
    frames = collect(client, lambda fs: snapshots_of(fs))
    assert snapshots_of(frames)[0].fields["step"] == paused_at + 1
    assert loop.steps_done == paused_at

    client.send("command", {"cmd": "step", "n": 3})
    collect(client, lambda fs: states_of(fs)[-2:] == ["running", "paused"])
    time.sleep(0.3)
    assert loop.steps_done == paused_at + 3 and loop.in_step

    client.send("command", {"cmd": "play"})
    collect(client, lambda fs: "running" in states_of(fs))
    loop.wait_steps(5)


def test_set_lr_sets_every_parameter_group_and_bad_values_are_notices(closing):
    model = TinyNet()
    opt = torch.optim.SGD([{"params": model.conv.parameters()}, {"params": model.fc.parameters(), "lr": 0.5}],
                          lr=0.1)
    watcher = explorer.watch(model, optimizer=opt, control=True, quiet=True)
    closing.append(watcher)
    assert watcher.viewer_token is not None
    client = connect(watcher, closing)
    assert client.welcome["model"]["hparams"] == {"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0}
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    for bad in (-1.0, 0, "fast", True, float("inf")):
        client.send("command", {"cmd": "set_lr", "lr": bad})
    client.send("command", {"cmd": "set_lr", "lr": 0.05})
    frames = collect(client, lambda fs: any("learning rate set" in t for t in notices_of(fs)))
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05]
    notices = notices_of(frames)
    assert sum("must be a positive finite number" in t for t in notices) == 5
    assert notices[-1] == "learning rate set to 0.05"
    # a window that connects later is welcomed with the new learning rate
    assert connect(watcher, closing).welcome["model"]["hparams"]["lr"] == 0.05


def test_set_lr_without_the_optimizer_is_a_notice(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, control=True, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    closing.append(Loop(watcher, model, opt))
    client.send("command", {"cmd": "set_lr", "lr": 0.01})
    frames = collect(client, lambda fs: notices_of(fs))
    assert "did not pass its optimizer" in notices_of(frames)[0]
    assert opt.param_groups[0]["lr"] == 0.1


def test_viewers_are_refused_control_and_the_loop_goes_on(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, optimizer=opt, quiet=True)  # control=False
    closing.append(watcher)
    client = connect(watcher, closing)
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    for fields in ({"cmd": "pause"}, {"cmd": "step", "n": 2}, {"cmd": "set_lr", "lr": 1.0}):
        client.send("command", fields)
    frames = collect(client, lambda fs: len(notices_of(fs)) >= 3)
    assert notices_of(frames)[:3] == ["viewers may not control the run"] * 3
    loop.wait_steps(10)
    assert opt.param_groups[0]["lr"] == 0.1 and "paused" not in states_of(frames)
    with pytest.raises(WireError, match="wrong token"):
        connect(watcher, closing, token="not-the-token")


def test_with_control_the_viewer_token_watches_but_cannot_control(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, control=True, quiet=True)
    closing.append(watcher)
    assert read_token_file(watcher.token_file)["viewer_token"] == watcher.viewer_token
    with pytest.raises(WireError, match="viewers may not control the run"):
        connect(watcher, closing, role="control", token=watcher.viewer_token)
    viewer = connect(watcher, closing, role="viewer", token=watcher.viewer_token)
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    viewer.send("command", {"cmd": "pause"})
    viewer.send("command", {"cmd": "snapshot"})  # any role may ask for a snapshot
    frames = collect(viewer, lambda fs: notices_of(fs) and snapshots_of(fs))
    assert notices_of(frames) == ["viewers may not control the run"]
    loop.wait_steps(10)


def test_an_erf_request_brings_a_snapshot_with_the_field_and_bad_requests_are_notices(setup, closing):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing, role="viewer")
    closing.append(Loop(watcher, model, opt))
    for bad in ({"layer": "nope", "channel": 0, "y": 1, "x": 1}, {"layer": "conv", "channel": -1, "y": 1, "x": 1},
                {"layer": "conv", "channel": 0, "y": "1", "x": 1}, {"layer": "conv"}):
        client.send("command", {"cmd": "erf", **bad})
    client.send("command", {"cmd": "unheard-of"})
    client.send("command", {"cmd": "erf", "layer": "conv", "channel": 1, "y": 2, "x": 3})
    frames = collect(client, lambda fs: any("erf/conv" in s.arrays for s in snapshots_of(fs)))
    erf = next(s for s in snapshots_of(frames) if "erf/conv" in s.arrays).arrays["erf/conv"]
    assert erf.shape == (8, 8) and erf.dtype == np.float32
    notices = notices_of(frames)
    assert sum(t.startswith("erf: needs a layer of the model") for t in notices) == 4
    assert any(t.startswith("unknown command 'unheard-of'") for t in notices)
    # the field comes once: later snapshots are without it
    client.send("command", {"cmd": "snapshot"})
    later = collect(client, lambda fs: snapshots_of(fs))
    assert "erf/conv" not in snapshots_of(later)[-1].arrays


# -- faults ---------------------------------------------------------------------------------------------------

def test_a_probe_that_fails_mid_run_stops_the_snapshots_with_one_notice_and_the_curves_go_on(setup, closing, caplog):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    client.send("command", {"cmd": "snapshot"})
    collect(client, lambda fs: snapshots_of(fs))
    with caplog.at_level(logging.ERROR, logger="explorer.watch"):
        model.fail_in_eval = True
        client.send("command", {"cmd": "snapshot"})
        frames = collect(client, lambda fs: notices_of(fs))
        notice = notices_of(frames)[0]
        assert notice == "the snapshots stopped (RuntimeError: the probe went wrong); the training goes on"
        steps_then = loop.steps_done
        for _ in range(3):
            client.send("command", {"cmd": "snapshot"})
        frames = collect(client, lambda fs: max((r["step"] for r in rows_of(fs)), default=0) > steps_then + 20)
    assert not snapshots_of(frames) and not notices_of(frames)
    logged = [r for r in caplog.records if r.name == "explorer.watch"]
    assert [r.getMessage() for r in logged] == [notice] and logged[0].exc_info is not None  # once, with its traceback
    late = connect(watcher, closing)  # a window that comes later is told too
    assert notices_of(collect(late, lambda fs: notices_of(fs))) == [notice]


def test_a_probe_the_model_cannot_take_is_said_to_every_window_and_the_loop_runs(closing):
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher = explorer.watch(model, torch.randn(2, 3, 5), quiet=True)  # not a picture of one channel
    closing.append(watcher)
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    loop.wait_steps(5)
    client = connect(watcher, closing)
    frames = collect(client, lambda fs: notices_of(fs) and rows_of(fs))
    assert notices_of(frames)[0].startswith("the probe cannot go through the model; snapshots show the weights only")
    assert client.welcome["model"]["input_shape"] is None
    loop.wait_steps(5)


def test_scalars_that_are_not_finite_numbers_are_left_out_with_one_notice_each(setup, closing, caplog):
    model, opt, probe = setup
    watcher = explorer.watch(model, listen="127.0.0.1:0", quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    with caplog.at_level(logging.WARNING, logger="explorer.watch"):
        for _ in range(3):
            watcher.step(loss=0.5, acc=np.float32(0.25), n=3, bad=float("nan"), big=float("inf"),
                         t=torch.tensor(1.0), s="text", time=4.0, flag=True)
        watcher.step(step=100, epoch=2, loss=0.25)
        watcher.step(loss=0.125)
        watcher.close()
    frames = read_to_end(client)
    rows = [r for r in rows_of(frames) if "loss" in r]
    assert rows[0] == {"step": 1, "time": rows[0]["time"], "loss": 0.5, "acc": 0.25, "n": 3}
    assert [r["step"] for r in rows] == [1, 2, 3, 100, 101] and rows[3]["epoch"] == 2
    notices = notices_of(frames)
    assert len(notices) == 6 and len([r for r in caplog.records if r.name == "explorer.watch"]) == 6
    for key in ("bad", "big", "t", "s", "time", "flag"):
        assert sum(t.startswith(f"step({key}=") for t in notices) == 1, key
    assert "loss.item()" in next(t for t in notices if t.startswith("step(t="))


def test_the_gradient_norms_failing_stop_the_gradient_rows_only(setup, closing, monkeypatch):
    model, opt, probe = setup
    monkeypatch.setattr(watcher_module, "grad_norms", lambda *a: 1 / 0)
    watcher = explorer.watch(model, probe, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    closing.append(Loop(watcher, model, opt))
    client.send("command", {"cmd": "snapshot"})
    frames = collect(client, lambda fs: snapshots_of(fs) and notices_of(fs) and len(rows_of(fs)) > 10)
    assert notices_of(frames)[0].startswith("the gradient norms stopped (ZeroDivisionError")
    assert not any(k.startswith("grad/") for r in rows_of(frames) for k in r)
    assert np.isnan(snapshots_of(frames)[0].arrays["grad_norms"]).all()


def test_a_port_in_use_means_no_server_and_the_loop_still_runs(setup, capsys):
    model, opt, probe = setup
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        watcher = explorer.watch(model, probe, listen=f"127.0.0.1:{port}")
        assert watcher.address is None and watcher.token is None and watcher.token_file is None
        assert watcher.active
        watcher.step(loss=1.0)
        watcher.close()
    assert f"explorer: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_script_without_logging_hears_of_a_port_in_use_once():
    """Without logging set up, Python's last-resort handler printed the log's WARNING beside the line meant for
    the user: the same fault twice."""
    import subprocess
    import sys

    code = ("import socket, torch, explorer\n"
            "taken = socket.socket(); taken.bind(('127.0.0.1', 0)); taken.listen()\n"
            "port = taken.getsockname()[1]\n"
            "w = explorer.watch(torch.nn.Linear(2, 2), torch.zeros(1, 2), listen=f'127.0.0.1:{port}')\n"
            "w.step(loss=1.0); w.close()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("cannot listen") == 1, r.stderr


@pytest.mark.parametrize("kwargs,error,match", [
    ({"model": "a model"}, TypeError, "needs a torch.nn.Module"),
    ({"listen": "nowhere"}, ValueError, "HOST:PORT"),
    ({"listen": "127.0.0.1:99999"}, ValueError, "from 0 to 65535"),
    ({"listen": "127.0.0.1:\u00b2"}, ValueError, "from 0 to 65535"),  # (a digit to isdigit, not to int)
    ({"budget": 0}, ValueError, "share of the loop's time"),
    ({"optimizer": "sgd"}, TypeError, "torch optimizer"),
    ({"token": "has space"}, ValueError, "printable ASCII"),
])
def test_wrong_arguments_are_said_at_once(kwargs, error, match):
    args = {"model": TinyNet(), "quiet": True, **kwargs}
    with pytest.raises(error, match=match):
        explorer.watch(args.pop("model"), **args)


# -- nobody watching ------------------------------------------------------------------------------------------

class CountTorchCalls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_with_nobody_watching_a_step_does_no_tensor_work_and_a_late_window_gets_every_row(setup, closing,
                                                                                           monkeypatch):
    model, opt, probe = setup
    heavy: list[str] = []

    def snapshot_spy(*args, **kwargs):
        heavy.append("take_snapshot")
        return {}, {}

    def grads_spy(model, layers, modules=None):
        heavy.append("grad_norms")
        return np.zeros(len(layers), np.float32)

    monkeypatch.setattr(watcher_module, "take_snapshot", snapshot_spy)
    monkeypatch.setattr(watcher_module, "grad_norms", grads_spy)
    watcher = explorer.watch(model, probe, quiet=True)
    closing.append(watcher)
    x, y = batch()
    nn.functional.cross_entropy(model(x), y).backward()  # gradients there to be read, if it wanted to
    with CountTorchCalls() as mode:
        for i in range(300):
            watcher.step(loss=1.0 / (i + 1))
            if i % 100 == 0:
                time.sleep(TICK_S * 1.5)  # ticks pass: the rows are kept, not sent
    assert mode.calls == [] and heavy == []
    client = connect(watcher, closing)
    time.sleep(0.3)  # the next step ticks, and finds the window
    watcher.step(loss=0.0)
    rows = rows_of(collect(client, lambda fs: len(rows_of(fs)) >= 301))
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 302))
    assert heavy == ["grad_norms", "take_snapshot"]  # with a window: due at once



def test_a_snapshots_gradient_norms_are_also_its_steps_gradient_row(setup, closing, monkeypatch):
    """A snapshot carries the gradient norms of its step; they go out as that step's gradient row too, and
    the next row is due a gradient period after it: the norms are read once a step at most."""
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, quiet=True)
    closing.append(watcher)
    read_at: list[int] = []
    real = watcher_module.grad_norms

    def counting(*args, **kwargs):
        read_at.append(watcher._n)
        return real(*args, **kwargs)

    monkeypatch.setattr(watcher_module, "grad_norms", counting)
    client = connect(watcher, closing)
    x, y = batch()
    frames: list = []
    deadline = time.monotonic() + 10.0
    while len(snapshots_of(frames)) < 8:
        assert time.monotonic() < deadline, "too few snapshots"
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        watcher.step(loss=1.0)
        time.sleep(0.002)
        frame = client.frames(0.0)
        if frame is not None:
            frames.append(frame)
    watcher.close()
    frames += collect(client, lambda fs: "ended" in states_of(fs))
    grad_steps = [r["step"] for r in rows_of(frames) if "grad/conv" in r]
    snapshot_steps = [f.fields["step"] for f in snapshots_of(frames)]
    assert len(read_at) == len(set(read_at)) == len(grad_steps)  # once a step, and each read is a row
    assert set(snapshot_steps) <= set(grad_steps)
    for f in snapshots_of(frames):
        row = next(r for r in rows_of(frames) if r["step"] == f.fields["step"] and "grad/conv" in r)
        assert f.arrays["grad_norms"].tolist() == [np.float32(row[f"grad/{n}"]) for n in watcher._grad_layers]


def test_a_paused_run_goes_on_when_its_last_window_is_gone(setup, closing, monkeypatch):
    monkeypatch.setattr(watcher_module, "ALONE_RESUME_S", 0.3)
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, control=True, quiet=True)
    closing.append(watcher)
    client = connect(watcher, closing)
    loop = Loop(watcher, model, opt)
    closing.append(loop)
    client.send("command", {"cmd": "pause"})
    collect(client, lambda fs: "paused" in states_of(fs))
    paused_at = loop.steps_done
    time.sleep(0.5)
    assert loop.steps_done == paused_at
    client.close()
    loop.wait_steps(5, timeout=5.0)


# -- closing --------------------------------------------------------------------------------------------------

EXIT_SCRIPT = """
import sys, torch
from torch import nn
import explorer
model = nn.Sequential(nn.Linear(3, 2))
watcher = explorer.watch(model, torch.randn(2, 3), logdir=sys.argv[1])
for i in range(5):
    watcher.step(loss=1.0 / (i + 1))
print(watcher.token_file, watcher.token_file.exists(), flush=True)
"""


def test_a_script_that_ends_without_close_is_closed_at_exit(tmp_path, runtime):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETWORK_EXPLORER_RUNTIME": str(runtime), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    path_text, existed = done.stdout.split()
    assert existed == "True" and Path(path_text).parent == runtime
    assert not Path(path_text).exists()
    assert re.fullmatch(r"explorer: watching Sequential on 127\.0\.0\.1:\d+ \(token in .+\)\n", done.stderr)
    assert (tmp_path / "run" / ENDED_FILE).is_file()
    rows = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5]
    # its last views too, as close() takes them: the folder opened afterwards shows step 5, not step 1
    from explorer.core.watch.folder import read_snapshot_file

    files = sorted((tmp_path / "run" / SNAPSHOT_DIR).iterdir())
    steps = [int(f.name.split(".")[0]) for f in files]
    assert steps[0] == 1 and steps[-1] == 5  # the first and, written at exit, the last
    assert read_snapshot_file(files[-1]).fields["step"] == 5


def test_a_loop_still_running_on_another_thread_is_closed_without_a_last_look(tmp_path, monkeypatch):
    """At interpreter exit a loop on a daemon thread goes on while the exit hooks close its watcher: the last
    look would run the model's forward in eval mode in the middle of a training step. It is taken from the
    loop's own thread, or once that thread has ended, and not otherwise."""
    model = TinyNet()
    taken = []
    real = watcher_module.take_snapshot
    monkeypatch.setattr(watcher_module, "take_snapshot", lambda *a, **k: (taken.append(1), real(*a, **k))[1])

    def run(watcher, steps: int, hold: threading.Event | None = None, ran: threading.Event | None = None):
        for i in range(steps):
            watcher.step(loss=1.0 / (i + 1))
        if ran is not None:
            ran.set()
        if hold is not None:
            hold.wait(10)

    watcher = explorer.watch(model, torch.randn(2, 1, 8, 8), listen=None, logdir=tmp_path / "a", quiet=True)
    ran, hold = threading.Event(), threading.Event()
    loop = threading.Thread(target=run, args=(watcher, 3, hold, ran), daemon=True)
    loop.start()
    assert ran.wait(10)
    before = len(taken)
    watcher_module._close_live_watchers()  # the exit hook, on the main thread, the loop still running
    assert len(taken) == before and not watcher.active
    assert (tmp_path / "a" / ENDED_FILE).is_file()  # closed all the same
    hold.set()
    loop.join(10)

    # the loop's thread has ended: the last look is taken (step 5's views, the folder's last file)
    watcher = explorer.watch(model, torch.randn(2, 1, 8, 8), listen=None, logdir=tmp_path / "b", quiet=True)
    loop = threading.Thread(target=run, args=(watcher, 5))
    loop.start()
    loop.join(10)
    before = len(taken)
    watcher.close()
    assert len(taken) == before + 1
    files = sorted((tmp_path / "b" / SNAPSHOT_DIR).iterdir())
    assert int(files[-1].name.split(".")[0]) == 5


def test_a_dropped_watcher_keeps_nothing_alive_and_is_closed():
    model = TinyNet()
    watcher = explorer.watch(model, torch.randn(2, 1, 8, 8), quiet=True)
    watcher.step(loss=1.0)
    path, server = watcher.token_file, watcher._out.server
    model_ref, watcher_ref = weakref.ref(model), weakref.ref(watcher)
    del watcher, model
    gc.collect()
    assert watcher_ref() is None and model_ref() is None
    assert not path.exists() and server._closed


# -- a folder -------------------------------------------------------------------------------------------------

def test_a_folder_only_watcher_writes_the_run_and_a_reader_follows_it_while_it_is_written(setup, tmp_path, capsys):
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run")
    assert watcher.address is None and watcher.token is None and watcher.token_file is None
    assert capsys.readouterr().err == f"explorer: watching TinyNet into {tmp_path / 'run'}\n"
    info = json.loads((tmp_path / "run" / WATCH_FILE).read_text())
    assert info["format"] == "network-explorer-watch" and info["model"]["name"] == "TinyNet"
    source = FolderSource(tmp_path / "run", poll=0.02)
    assert source.next_frame(1.0).fields["model"]["grad_layers"] == ["conv", "fc"]
    loop = Loop(watcher, model, opt, pause_s=0.01)
    frames = []
    deadline = time.monotonic() + 10
    while not (snapshots_of(frames) and len(rows_of(frames)) > 20):
        assert time.monotonic() < deadline
        frame = source.next_frame(0.1)
        if frame is not None:
            frames.append(frame)
    loop.finish(watcher)
    while (frame := source.next_frame(1.0)) is not None:
        frames.append(frame)
    assert states_of(frames) == ["running", "ended"] and source.closed_reason == "the training script ended"
    snap = snapshots_of(frames)[0]
    assert snap.fields["step"] == 1 and snap.arrays["weight/conv"].shape == (4, 1, 3, 3)
    assert snap.arrays["grad_norms"].shape == (2,)
    loss_steps = [r["step"] for r in rows_of(frames) if "loss" in r]
    assert loss_steps == list(range(1, loop.steps_done + 1))
    assert any("grad/fc" in r for r in rows_of(frames))
    assert len(list((tmp_path / "run" / SNAPSHOT_DIR).iterdir())) >= 1


def test_a_run_shorter_than_a_second_leaves_its_last_step_in_the_folder(setup, tmp_path):
    """Snapshot files are written at most every second; the run's last views are written when it ends, so a
    folder opened afterwards shows the model as the run left it, under its own step."""
    from explorer.core.watch.folder import read_snapshot_file

    model, opt, probe = setup
    watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run", quiet=True)
    for _ in range(7):
        loss = model(probe).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        watcher.step(loss=loss.item())
    watcher.close()
    files = sorted((tmp_path / "run" / SNAPSHOT_DIR).iterdir())
    assert [int(f.name.split(".")[0]) for f in files] == [1, 7]
    last = read_snapshot_file(files[-1])
    assert last.fields["step"] == 7
    np.testing.assert_array_equal(last.arrays["weight/conv"], model.conv.weight.detach().numpy())
    watcher.close()  # a second close writes nothing more
    assert len(list((tmp_path / "run" / SNAPSHOT_DIR).iterdir())) == 2


# -- the package, and DistributedDataParallel -----------------------------------------------------------------

def test_import_explorer_loads_neither_torch_numpy_nor_qt_and_watch_loads_the_watcher():
    code = ("import sys, explorer\n"
            "heavy = [m for m in ('torch', 'numpy', 'PySide6', 'explorer.core', 'typing') if m in sys.modules]\n"
            "print(heavy, callable(explorer.watch), 'explorer.core.watch.watcher' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[] True False", done.stderr
    assert explorer.watch.__module__ == "explorer"


def test_under_distributed_data_parallel_only_rank_0_watches(tmp_path, runtime):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETWORK_EXPLORER_RUNTIME": str(runtime), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           str(ROOT / "tests" / "watch_ddp_script.py"), str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["active"] and ranks[0]["address"] is not None and ranks[0]["logdir"] == str(tmp_path / "run")
    assert not ranks[1]["active"] and ranks[1]["address"] is None and ranks[1]["token_file"] is None
    assert ranks[1]["logdir"] is None
    assert len(re.findall(r"explorer: watching ddp on 127\.0\.0\.1:\d+", done.stdout + done.stderr)) == 1
    assert list(runtime.iterdir()) == []  # its token file was removed at close
    rows = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, 13))
    # the norms after the all-reduce: the same on both ranks, and those of the first gradient row
    assert ranks[0]["first_norms"] == ranks[1]["first_norms"]
    first = next(r for r in rows if "grad/0" in r)
    assert first["step"] == 1
    assert math.isclose(first["grad/0"], ranks[0]["first_norms"]["0"], rel_tol=1e-6)
    assert math.isclose(first["grad/2"], ranks[0]["first_norms"]["2"], rel_tol=1e-6)


class SteppedClock:
    """A clock that moves only when told, plus ``per_call`` seconds at each reading."""

    def __init__(self, start: float = 100.0, per_call: float = 0.0) -> None:
        self.now, self.per_call = start, per_call

    def __call__(self) -> float:
        self.now += self.per_call
        return self.now


def test_a_rows_time_is_to_the_microsecond_and_its_values_as_given(setup, monkeypatch):
    model, _, _ = setup
    clock = SteppedClock()
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, listen=None, quiet=True)
    watcher._next_tick = math.inf  # no tick: the rows stay in the batch to be read
    rows = watcher._out.batch
    for elapsed, loss in ((0.2500004, 0.5), (1.1234566, np.float64(0.25)), (2.0000006, 7)):
        clock.now = 100.0 + elapsed
        watcher.step(loss=loss, epoch=3)
    watcher.step(loss=float("-inf"), epoch=3)
    assert [r["time"] for r in rows] == [0.25, 1.123457, 2.000001, 2.000001]
    assert [r.get("loss") for r in rows] == [0.5, 0.25, 7, None] and type(rows[2]["loss"]) is int
    assert all(r["epoch"] == 3 for r in rows) and [r["step"] for r in rows] == [1, 2, 3, 4]
    watcher.close()


def test_with_nobody_watching_the_steps_time_is_charged_to_the_pacer_at_the_next_tick(setup, monkeypatch):
    model, _, _ = setup
    clock = SteppedClock(per_call=1e-5)  # each reading of the clock: 10 us later
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, listen=None, quiet=True)
    watcher._cpu_clock = clock  # (a tick's CPU time, read off the same clock)
    pacer = watcher._pacer
    watcher.step(loss=1.0)  # the first step ticks; the next tick charges it
    clock.now += TICK_S
    watcher.step(loss=1.0)
    spent = pacer.spent + watcher._unpaid  # (this step's own bookkeeping, charged at the next tick)
    for _ in range(6):
        watcher.step(loss=1.0)  # two readings a step: 10 us of bookkeeping each
    assert pacer.spent + watcher._unpaid == pytest.approx(spent + 6 * 1e-5, rel=1e-6)
    clock.now += TICK_S
    watcher.step(loss=1.0)  # this one ticks: the six steps before it are charged
    assert pacer.spent - spent == pytest.approx(6 * 1e-5, rel=1e-6)
    watcher.close()


def _busy_ticks(watcher, clock, cpu, monkeypatch, *, flush_wait: float = 0.0) -> float:
    """Four steps on hand-driven clocks, each with a tick of 0.2 ms of work followed by 4.8 ms off the CPU
    (and, with a folder, a flush that waits ``flush_wait`` seconds on the disk); what the pacer was charged
    and still owes."""
    watcher._cpu_clock = cpu
    tick = watcher._tick

    def busy_tick(now):
        tick(now)
        clock.now += 0.005
        cpu.now += 0.0002

    monkeypatch.setattr(watcher, "_tick", busy_tick)
    if watcher._out.folder is not None:
        flush = watcher._out.folder.flush

        def slow_flush(*args, **kwargs):
            flush(*args, **kwargs)
            clock.now += flush_wait

        monkeypatch.setattr(watcher._out.folder, "flush", slow_flush)
    for _ in range(4):
        clock.now += TICK_S
        watcher.step(loss=1.0)
    return watcher._pacer.spent + watcher._unpaid


@pytest.mark.parametrize("heavy", [False, True], ids=["nobody-watching", "a-folder-written"])
def test_a_tick_is_charged_its_cpu_time_not_the_time_its_thread_was_kept_off_the_cpu(setup, tmp_path, monkeypatch,
                                                                                      heavy):
    """On a busy machine a tick of 0.2 ms of CPU took 5 ms of wall time: charging the 5 ms stopped every
    snapshot for seconds. A tick whose thread is kept off the CPU for 5 ms is charged only its own work,
    whether heavy work is paced (a folder written, here) or not."""
    model, _, probe = setup
    clock, cpu = SteppedClock(), SteppedClock(start=0.0)
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run" if heavy else None, quiet=True)
    try:
        assert _busy_ticks(watcher, clock, cpu, monkeypatch) == pytest.approx(4 * 0.0002, rel=1e-6)
        assert watcher._heavy is heavy
    finally:
        watcher.close()


def test_a_folder_flush_that_waits_on_the_disk_is_charged_its_wall_time(setup, tmp_path, monkeypatch):
    model, _, probe = setup
    clock, cpu = SteppedClock(), SteppedClock(start=0.0)
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run", quiet=True)
    try:
        charged = _busy_ticks(watcher, clock, cpu, monkeypatch, flush_wait=0.05)
        assert charged == pytest.approx(4 * (0.0002 + 0.05), rel=1e-6)
    finally:
        watcher.close()


@pytest.mark.parametrize("where", ["cpu", "cpu-workers", "accelerator"])
def test_while_watched_a_step_is_charged_its_cpu_time_and_a_look_waits_for_the_disk_or_device(
        setup, tmp_path, monkeypatch, where):
    """After an attach the window, starting on the same two cores, kept the loop's thread off the CPU ~0.5 ms
    in many steps' bookkeeping: charged as wall time, that stopped the views and gradient rows for 3 s. While
    heavy work is paced a step is charged its CPU time; a look its CPU time (the process's, with torch's worker
    threads, if more, up to its wall time) and its snapshot file's wait for the disk, or, on an accelerator
    (where it waits for the device off the CPU), its whole wall time."""
    model, _, probe = setup
    clock, cpu, process = SteppedClock(), SteppedClock(start=0.0), SteppedClock(start=0.0)
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run", quiet=True)
    try:
        watcher._cpu_clock, watcher._process_clock = cpu, process
        if where == "accelerator":  # (the charge asks where the model is; the snapshot itself runs on the CPU)
            monkeypatch.setattr(watcher_module, "_device_of", lambda model: torch.device("cuda"))
        watcher.step(loss=1.0)  # it ticks: a folder is written, heavy work is paced from here
        assert watcher._heavy
        row, look, write = watcher._row, watcher._look, watcher._out.folder.write_snapshot

        def preempted_row(now, scalars):  # 0.1 ms of work, 4.9 ms off the CPU
            clock.now += 0.005
            cpu.now += 0.0001
            return row(now, scalars)

        def slow_look(now, last_row):  # 2 ms of the loop thread's work (and 4 of its workers'), 8 ms waiting
            look(now, last_row)
            clock.now += 0.010
            cpu.now += 0.002
            process.now += 0.006 if where == "cpu-workers" else 0.002

        def slow_write(*args, **kwargs):  # 30 ms waiting for the disk
            write(*args, **kwargs)
            clock.now += 0.030

        monkeypatch.setattr(watcher, "_row", preempted_row)
        monkeypatch.setattr(watcher, "_look", slow_look)
        monkeypatch.setattr(watcher._out.folder, "write_snapshot", slow_write)
        watcher._next_tick = math.inf
        charged = watcher._pacer.spent + watcher._unpaid
        watcher._look_at = math.inf  # nothing heavy due
        for _ in range(3):
            watcher.step(loss=1.0)
        assert watcher._pacer.spent + watcher._unpaid - charged == pytest.approx(3 * 0.0001, rel=1e-6)
        clock.now += 10.0  # (the debt paid: the snapshot, and its file, are due)
        watcher._look_at, watcher._folder_written_at = -math.inf, -math.inf
        written = watcher._folder_step
        watcher.step(loss=1.0)
        assert watcher._folder_step > written
        look_charge = {"cpu": 0.002, "cpu-workers": 0.006, "accelerator": 0.010}[where] + 0.030
        assert watcher._pacer.spent - charged == pytest.approx(4 * 0.0001 + look_charge, rel=1e-6)
    finally:
        watcher.close()


def test_a_window_that_attaches_gets_a_snapshot_at_once_and_one_that_comes_back_owes_what_it_left(
        setup, monkeypatch):
    """Nobody watching, a step's bookkeeping is charged its wall time (the CPU clock is not read): a window
    starting on the same cores kept the loop's thread waiting in some, and the first snapshot waited 0.3-0.7 s
    for that debt after the window connected. Heavy work owes only what heavy work left unpaid: a window that
    leaves and comes back at once is no way around the budget."""
    model, _, probe = setup
    clock, cpu = SteppedClock(), SteppedClock(start=0.0)
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    watcher = explorer.watch(model, probe, quiet=True)
    try:
        watcher._cpu_clock = watcher._process_clock = cpu
        viewers = [0]
        monkeypatch.setattr(watcher._out.server, "viewers", lambda: viewers[0])
        row, look = watcher._row, watcher._look

        def preempted_row(now, scalars):  # 0.1 ms of work, 4.9 ms off the CPU
            clock.now += 0.005
            cpu.now += 0.0001
            return row(now, scalars)

        def costly_look(now, last_row):  # a snapshot: 30 ms of work
            shown = watcher._shown_step
            look(now, last_row)
            if watcher._shown_step != shown:
                cpu.now += 0.030

        monkeypatch.setattr(watcher, "_row", preempted_row)
        monkeypatch.setattr(watcher, "_look", costly_look)
        watcher.step(loss=1.0)
        watcher._next_tick = math.inf
        for _ in range(10):
            watcher.step(loss=1.0)
        # (the first step ticked: its CPU time), then ten steps' wall time: 1.7 s of debt once charged, at 3%
        assert watcher._unpaid == pytest.approx(0.0001 + 10 * 0.005, rel=1e-6)
        viewers[0] = 1  # a window attaches: the next tick sees it
        watcher._next_tick = -math.inf
        watcher.step(loss=1.0)
        assert watcher._shown_step == watcher._n  # its first snapshot, at once
        owed = (0.0001 + 0.030) / watcher._pacer.budget  # this step's own work, the snapshot's: 1 s
        assert watcher._pacer.debt == pytest.approx(owed, rel=1e-6)
        viewers[0] = 0  # it leaves (seen at the next tick), and comes back at the tick after
        clock.now += TICK_S
        watcher.step(loss=1.0)
        left_owing = watcher._pacer.debt
        assert not watcher._heavy and left_owing > 0.8
        viewers[0] = 1
        clock.now += TICK_S
        watcher.step(loss=1.0)
        assert watcher._heavy and watcher._shown_step < watcher._n  # no snapshot: the debt is still there
        # what it left owing, less the time since (to a step's 5 ms), plus this step's own work
        assert watcher._pacer.debt == pytest.approx(left_owing - TICK_S + 0.0001 / watcher._pacer.budget, abs=0.01)
    finally:
        watcher.close()


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
def test_a_cpu_models_snapshot_runs_on_one_thread_unless_it_is_large_and_the_users_threads_are_kept(
        setup, tmp_path, monkeypatch, large):
    """On torch's worker threads a small snapshot waited at their barrier for a worker another process kept
    off its core (a window starting on the same machine): 2-3 ms became 40-85 ms. A CPU model's snapshot runs
    on one thread, unless one takes more than ONE_THREAD_MAX_CPU_S of work there; the user's setting stays."""
    model, opt, probe = setup
    if large:
        monkeypatch.setattr(watcher_module, "ONE_THREAD_MAX_CPU_S", 0.0)
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        watcher = explorer.watch(model, probe, listen=None, logdir=tmp_path / "run", quiet=True)
        model.register_forward_hook(  # (after watch(): its look at the model's shapes is no snapshot)
            lambda module, args, out: None if torch.is_grad_enabled() else seen.append(torch.get_num_threads()))
        try:
            for _ in range(3):
                loss = model(probe).square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                assert torch.get_num_threads() == 2  # the user's, in the loop
                watcher._look_at, watcher._folder_written_at = -math.inf, -math.inf
                watcher._pacer.set_debt(0.0)
                watcher._pacer._last.clear()
                watcher.step(loss=loss.item())
                assert torch.get_num_threads() == 2
        finally:
            watcher.close()
    finally:
        torch.set_num_threads(threads)
    assert seen == ([1, 2, 2] if large else [1, 1, 1])  # (a large one: the first found it out)


def test_where_the_cpu_clock_is_coarse_a_tick_is_charged_its_wall_time(setup, monkeypatch):
    """Windows counts a thread's CPU time in 15.6 ms ticks: a 0.2 ms tick would read 0 and go uncharged."""
    model, _, probe = setup
    clock, cpu = SteppedClock(), SteppedClock(start=0.0)
    monkeypatch.setattr(watcher_module, "Pacer", lambda budget: Pacer(budget, clock=clock))
    monkeypatch.setattr(watcher_module, "COARSE_CPU_CLOCK", True)
    watcher = explorer.watch(model, probe, listen=None, quiet=True)
    try:
        assert _busy_ticks(watcher, clock, cpu, monkeypatch) == pytest.approx(4 * 0.005, rel=1e-6)
    finally:
        watcher.close()


def test_a_ctrl_c_during_the_last_views_still_closes_the_watcher(setup, tmp_path, monkeypatch):
    """close() takes the run's last views; interrupted there, it still stops serving and removes its token
    file before the interruption goes on up."""
    model, opt, probe = setup
    watcher = explorer.watch(model, probe, logdir=tmp_path / "run", quiet=True)
    loss = model(probe).square().mean()
    loss.backward()
    watcher.step(loss=loss.item())
    watcher._folder_step = -1  # (the first snapshot was written: make the last one due)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(watcher_module, "take_snapshot", interrupted)
    path, server = watcher.token_file, watcher._out.server
    with pytest.raises(KeyboardInterrupt):
        watcher.close()
    assert not watcher.active and not path.exists() and server._closed
    assert (tmp_path / "run" / ENDED_FILE).is_file()
