"""The scripts in examples/ run as a user runs them (a fresh Python, ``python examples/NAME.py``), watched,
with a few steps each: they exit 0, print their metric, and the metric says the few steps taught
something. The DDP example runs on two gloo processes and its ranks end with equal weights. A bad option or
file stops a script before it trains: exit status 2 and one line naming the option or file, no traceback."""

import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def start_example(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # as a plain shell has it, not torchrun
        env.pop(name, None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_example(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    r = start_example(args, timeout)
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    return r


def last_match(pattern: str, text: str) -> re.Match:
    found = list(re.finditer(pattern, text))
    assert found, f"no line matches {pattern!r} in:\n{text}"
    return found[-1]


def test_cnn_digits_learns_in_a_few_steps(tmp_path):
    r = run_example([str(EXAMPLES / "watch_cnn_digits.py"), "--steps", "40", "--logdir", str(tmp_path / "run")])
    m = last_match(r"test accuracy ([\d.]+)% after (\d+) steps; ([\d.]+) steps/s", r.stdout)
    assert int(m[2]) == 40
    assert float(m[1]) > 50  # chance is 10%; 40 steps give about 85%
    assert float(m[3]) > 0


def test_cnn_digits_bare_loop_reports_its_speed():
    r = run_example([str(EXAMPLES / "watch_cnn_digits.py"), "--steps", "20", "--no-watch"])
    m = last_match(r"after (\d+) steps; ([\d.]+) steps/s \([\d.]+ s training, not watched\)", r.stdout)
    assert int(m[1]) == 20 and float(m[2]) > 0


def test_char_lstm_beats_guessing(tmp_path):
    r = run_example([str(EXAMPLES / "watch_char_lstm.py"), "--steps", "20", "--print-every", "10",
                     "--sample-every", "20", "--logdir", str(tmp_path / "run")])
    vocab = int(last_match(r"([\d,]+) characters, (\d+) distinct", r.stdout)[2])
    m = last_match(r"held-out loss ([\d.]+) after (\d+) steps \(guessing: ([\d.]+)\)", r.stdout)
    assert int(m[2]) == 20
    assert float(m[3]) == round(math.log(vocab), 3)
    assert float(m[1]) < float(m[3]) - 0.5  # 20 steps learn the characters' frequencies at least
    assert len(re.findall(r"^step \d+: loss [\d.]+ \(perplexity [\d.]+\)", r.stdout, re.M)) == 2
    assert re.search(r"^  '.{100,}'$", r.stdout, re.M)  # a generated sample


def test_char_lstm_reads_the_users_text_file(tmp_path):
    text = tmp_path / "mine.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 100, encoding="utf-8")
    r = run_example([str(EXAMPLES / "watch_char_lstm.py"), str(text), "--steps", "5", "--seq-len", "16",
                     "--no-watch"])
    assert f"{text}: 4,500 characters, 28 distinct" in r.stdout
    last_match(r"held-out loss [\d.]+ after 5 steps", r.stdout)


def test_unet_scenes_improves_the_mean_iou(tmp_path):
    r = run_example([str(EXAMPLES / "watch_unet_scenes.py"), "--steps", "12", "--scenes", "96",
                     "--logdir", str(tmp_path / "run")])
    before = float(last_match(r"before training: pixel accuracy [\d.]+%, mean IoU ([\d.]+)", r.stdout)[1])
    m = last_match(r"mean IoU ([\d.]+), pixel accuracy ([\d.]+)% after (\d+) steps", r.stdout)
    assert int(m[3]) == 12
    assert float(m[1]) > before + 0.05


def test_ddp_ranks_finish_with_equal_weights():
    r = run_example(["-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                     str(EXAMPLES / "watch_ddp.py"), "--steps", "15"], timeout=180)
    ranks = dict(re.findall(r"^rank (\d) of 2: 15 steps, weights checksum ([0-9a-f]{16})$", r.stdout, re.M))
    assert sorted(ranks) == ["0", "1"], r.stdout
    assert ranks["0"] == ranks["1"]
    m = last_match(r"test accuracy ([\d.]+)% after 15 steps on 2 ranks", r.stdout)
    assert float(m[1]) > 30  # chance is 10%
    # only rank 0 publishes: one watcher listens, the other rank's is a no-op that says nothing
    watching = re.findall(r"^explorer: watching .*$", r.stderr, re.M)
    assert len(watching) == 1, r.stderr
    assert "cannot listen" not in r.stderr


# -- bad options and files: refused before training starts ------------------------------------------------------

# (script, its arguments, what the error line must say); {binary}, {missing}, {short} and {file} are made below
REFUSED = {
    "cnn --epochs 0": ("watch_cnn_digits.py", ["--epochs", "0"], "argument --epochs: expected a number >= 1, got 0"),
    "cnn --batch-size 0": ("watch_cnn_digits.py", ["--batch-size", "0"], "argument --batch-size:"),
    "cnn --lr nan": ("watch_cnn_digits.py", ["--lr", "nan"], "argument --lr: expected a finite number, got nan"),
    "cnn --device missing": ("watch_cnn_digits.py", ["--device", "cuda:99"], "argument --device: cannot use 'cuda:99'"),
    "cnn --listen port": ("watch_cnn_digits.py", ["--listen", "127.0.0.1:abc"],
                          "argument --listen: the port must be a number from 0 to 65535"),
    "cnn --logdir a file": ("watch_cnn_digits.py", ["--logdir", "{file}"], "argument --logdir: cannot make the folder"),
    "lstm binary text": ("watch_char_lstm.py", ["--steps", "5", "{binary}"], "{binary}: not a UTF-8 text file"),
    "lstm missing text": ("watch_char_lstm.py", ["--steps", "5", "{missing}"], "{missing}: cannot read it"),
    "lstm short text": ("watch_char_lstm.py", ["--steps", "5", "{short}"], "{short}: 3 characters is too short"),
    "lstm --seq-len 0": ("watch_char_lstm.py", ["--seq-len", "0"], "argument --seq-len:"),
    "unet --scenes 0": ("watch_unet_scenes.py", ["--steps", "5", "--scenes", "0"], "argument --scenes:"),
    "unet --batch-size huge": ("watch_unet_scenes.py", ["--batch-size", "100000"], "argument --batch-size:"),
    "ddp without torchrun": ("watch_ddp.py", ["--steps", "5"],
                             "start it with torchrun, which runs one process per rank: torchrun --nproc_per_node=2 "),
    "ddp --batch-size 0": ("watch_ddp.py", ["--batch-size", "0"], "argument --batch-size:"),
}


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """Every case of REFUSED run at once (each is a fresh Python importing torch, then a quick exit)."""
    tmp = tmp_path_factory.mktemp("refused")
    paths = {"binary": tmp / "model.bin", "missing": tmp / "missing.txt", "short": tmp / "short.txt",
             "file": tmp / "a-file"}
    paths["binary"].write_bytes(bytes(range(256)) * 8)
    paths["short"].write_text("abc", encoding="utf-8")
    paths["file"].write_text("not a folder", encoding="utf-8")
    cases = {name: (script, [a.format(**paths) for a in args], said.format(**paths))
             for name, (script, args, said) in REFUSED.items()}

    def run(script: str, args: list[str]) -> subprocess.CompletedProcess:
        try:
            return start_example([str(EXAMPLES / script), *args], timeout=60)
        except subprocess.TimeoutExpired:  # it trained instead of stopping: that case fails, not all of them
            return subprocess.CompletedProcess(args, -1, "", "(still running after 60 s)")

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        runs = {name: pool.submit(run, script, args) for name, (script, args, _) in cases.items()}
        return {name: (cases[name], future.result()) for name, future in runs.items()}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_bad_option_or_file_is_one_line_and_exit_2(refused, case):
    (script, _, said), r = refused[case]
    where = f"exit {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    assert r.returncode == 2, where
    assert "Traceback" not in r.stderr and r.stdout == "", where
    *usage, message = r.stderr.splitlines()  # argparse's usage, then its one error line
    assert usage and usage[0].startswith("usage: ") and all(line.startswith(" ") for line in usage[1:]), where
    assert message.startswith(f"{script}: error: ") and said in message, where


def test_ddp_help_says_to_start_it_with_torchrun():
    r = run_example([str(EXAMPLES / "watch_ddp.py"), "--help"], timeout=60)
    assert "torchrun --nproc_per_node=2 examples/watch_ddp.py" in r.stdout
