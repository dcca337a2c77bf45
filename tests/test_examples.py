"""The scripts in examples/ run as a user runs them (a fresh Python, ``python examples/NAME.py``), watched,
with a few steps each: they exit 0, print their metric, and the metric says the few steps taught
something. The DDP example runs on two gloo processes and its ranks end with equal weights."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
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
