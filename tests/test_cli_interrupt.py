"""Ctrl+C (SIGINT) on ``python -m explorer train``: one line saying how far it got and whether the run folder was
written, exit status 130, no traceback, and the ``--out`` folder whole or absent, however early it comes.

A Ctrl+C escaped as tracebacks: while the command line was loading (before ``main``'s handler), and from
torch's exit handlers once the command had returned; caught, it said only "interrupted", and its status
was 130 or, when it had landed in an ``exec`` of a string (a dataclass being made), death by SIGINT."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from explorer.core.persist.runfolder import load_run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")

ROOT = Path(__file__).resolve().parents[1]


MODULE = ("-m", "explorer")
CONSOLE_SCRIPT = ("-c", "from explorer.entry import run; run()")  # (what pip's network-explorer script runs)


def start(out: Path, *python_options: str, program: tuple[str, ...] = MODULE) -> subprocess.Popen:
    """``python -m explorer train rbm`` on the bundled digits, tiny and long, writing ``out``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETWORK_EXPLORER_LOG_DIR": str(out.parent / "log")}
    # (Ctrl+C as from a terminal: a shell that starts a job in the background has it ignored, and Python
    # started with it ignored leaves it so)
    return subprocess.Popen([sys.executable, *python_options, *program, "train", "rbm", "--hidden", "8",
                             "--device", "cpu", "--epochs", "100000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def read_until(proc: subprocess.Popen, pattern: bytes, timeout: float = 60.0) -> bytes:
    """The process's stderr up to and including ``pattern`` (a regular expression)."""
    seen, deadline = b"", time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while not re.search(pattern, seen):
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"never saw {pattern!r}: {seen[-2000:]!r}"
        if select.select([fd], [], [], left)[0]:
            seen += os.read(fd, 65536)
    return seen


def interrupt(proc: subprocess.Popen, err: bytes) -> tuple[int, str, str]:
    """Ctrl+C, then (exit status, stdout, the whole stderr)."""
    proc.send_signal(signal.SIGINT)
    try:
        out, rest = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("still running 60 s after Ctrl+C") from None
    return proc.returncode, out.decode(errors="replace"), (err + rest).decode(errors="replace")


def check_out_folder(out: Path, line: str) -> None:
    """What the line says of the run folder is what is on disk: absent, or a whole run; nothing half-written
    beside it."""
    if re.search(r"run folder .* was written", line):
        run = load_run(out)
        assert run.family == "rbm" and run.step >= 0
    else:
        assert f"run folder {out} was not written" in line, line
        assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def test_ctrl_c_mid_training_says_the_step_and_that_the_run_folder_was_not_written(tmp_path):
    out = tmp_path / "run"
    proc = start(out)
    err = read_until(proc, rb"\] [1-9]\d*/\d+ steps")  # the progress bar: training has begun
    status, stdout, err_text = interrupt(proc, err)
    lines = [ln for ln in err_text.replace("\r", "\n").splitlines() if ln.startswith("explorer:")]
    assert status == 130, err_text[-3000:]
    assert "Traceback" not in err_text and "Exception ignored" not in err_text, err_text[-3000:]
    assert len(lines) == 1 and re.fullmatch(r"explorer: interrupted at step \d+; run folder .+", lines[0]), lines
    assert stdout == ""  # no result: it did not finish
    check_out_folder(out, lines[0])


@pytest.mark.parametrize("program", [MODULE, CONSOLE_SCRIPT], ids=["python -m explorer", "network-explorer"])
def test_ctrl_c_while_the_command_line_loads_says_nothing_was_written(tmp_path, program):
    """Early: the command line is being imported (``-X importtime`` lists each module as it is done), or,
    where the signal comes later than that, torch is; either way nothing was written and it says so. The
    console script's import of the command line was not guarded (``python -m explorer``'s was)."""
    out = tmp_path / "run"
    proc = start(out, "-X", "importtime", program=program)
    err = read_until(proc, rb"\| +explorer\.cli\.\w+\n")  # a module of the command line's imported
    status, stdout, err_text = interrupt(proc, err)
    lines = [ln for ln in err_text.splitlines() if ln.startswith("explorer:")]
    assert status == 130, err_text[-3000:]
    assert "Traceback" not in err_text and "Exception ignored" not in err_text, err_text[-3000:]
    assert lines in (["explorer: interrupted while starting; nothing was written"],
                     [f"explorer: interrupted before training started; run folder {out} was not written"]), lines
    assert stdout == "" and not out.exists()


def test_ctrl_c_while_the_run_folder_is_written_lets_it_finish_and_says_so(tmp_path, monkeypatch, capsys):
    """In this process (no start-up to wait for): a Ctrl+C as the run's files are on disk, before the folder is
    swapped in, is held until the folder is whole, then stops the command with the line saying so."""
    from explorer import cli
    from explorer.core import atomic

    def ctrl_c(stage: str) -> None:
        if stage == "files":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # (delivered: a KeyboardInterrupt here, were it not held)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as Python starts: not ignored)
    monkeypatch.setattr(atomic, "stage_hook", ctrl_c)
    out = tmp_path / "run"
    try:
        status = cli.main(["train", "rbm", "--hidden", "8", "--epochs", "1", "--device", "cpu", "--quiet",
                           "--out", str(out)])
    finally:
        signal.signal(signal.SIGINT, previous)
    captured = capsys.readouterr()
    assert status == 130 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    step = re.fullmatch(rf"explorer: interrupted at step (\d+); run folder {re.escape(str(out))} was written", line)
    assert step, line
    check_out_folder(out, line)
    assert load_run(out).step == int(step[1]) > 0  # the whole epoch's run, as the line says


def test_after_a_ctrl_c_a_second_one_is_ignored_while_the_line_is_said():
    """A quick double Ctrl+C raised the second KeyboardInterrupt in the making of the first one's line, or in
    the flush and the log's closing after it: a traceback and death by SIGINT (seen in a few of 20 tries)."""
    from explorer import cli

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli._interrupted() == 130
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # (the second press: nothing happens)
        time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_console_script_is_the_guarded_entry_point():
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"network-explorer": "explorer.entry:run"}
