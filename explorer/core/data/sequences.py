"""Sequence tasks for the recurrent networks, generated from a seed (or read from a text file).

Each task is a fixed training set and a fixed held-out set of sequences, so epochs and held-out
losses mean what they mean for the image families. Tasks (``TASKS``, named in ``sequence_tasks``):

* ``adding`` -- the adding problem: T steps of (value, marker) pairs, values uniform in [0, 1), exactly
  two markers (one in each half); the target, read at the last step, is the sum of the two marked values.
  Predicting the mean (1.0) scores MSE 1/6 ~ 0.167: that is the trivial baseline a network that cannot
  carry information across ~T steps stays at.
* ``recall`` -- delayed recall: one of 8 symbols (one-hot) at t = 0, then ``lag`` steps of distractor
  symbols, then a recall cue; the target, at the cue, is the first symbol. Chance is 1/8.
* ``sine`` / ``sawtooth`` -- next-step forecasting of a periodic signal with a random period (8 to 32
  steps) and phase: input x_t, target x_(t+1), at every step.
* ``text`` -- a character-level language model: input a character (one-hot), target the next one, at
  every step. The default corpus is a few pure-Python modules of the standard library of the running
  Python (read at run time, always the same files in the same order); or the user's own UTF-8 text file.

The ``baseline`` of each task is the held-out loss of the best input-free prediction: the mean target
(regression), uniform guessing (recall: log 8) or the training set's character frequencies (text).
"""

from __future__ import annotations

import math
import os
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from explorer.core.data.datasets import DataError
from explorer.core.data.sequence_tasks import TASKS
from explorer.core.limits import check_memory
from explorer.core.safe_read import UnsafeFileError, read_prefix

N_SYMBOLS = 8                 # recall: symbols to remember
MIN_PERIOD, MAX_PERIOD = 8.0, 32.0
STDLIB_FILES = ("textwrap.py", "string.py", "heapq.py", "bisect.py", "colorsys.py", "fnmatch.py", "shlex.py")
MAX_TEXT_CHARS = 2_000_000    # a longer file is cut here (said in the description)
MAX_VOCAB = 200               # rarer characters share one "unknown" symbol
UNKNOWN_CHAR = "\ufffd"
HELDOUT_SHARE = 0.1


@dataclass
class SequenceData:
    """A task's training and held-out sequences as tensors on one device.

    Inputs are float (N, T, n_in) for the generated tasks; text keeps character indices (N, T + 1)
    and makes the one-hot inputs per batch (a one-hot copy of a long text would not fit in memory).
    Targets: regression (N, n_out) at the last step or (N, T, 1) at every step; classes (N,) or (N, T).
    """

    name: str                       # the task name ("adding", ..., "text")
    kind: str                       # "regression" | "classes"
    every_step: bool                # loss on every step (forecasting, text) or only the last one
    n_in: int
    n_out: int
    length: int                     # T, the number of time steps of one training sequence
    train_in: torch.Tensor
    train_out: torch.Tensor | None
    test_in: torch.Tensor
    test_out: torch.Tensor | None
    baseline: float
    source: str = ""                # where the data comes from, for the description
    vocab: str = ""                 # text: the characters, index order
    heldout_text: str = ""          # text: the held-out part (the probe and generation prompt come from it)
    symbols: tuple[str, ...] = field(default_factory=tuple)

    # -- the attributes the command line and run folders read from a data set ---------------------
    @property
    def n_visible(self) -> int:
        """Inputs per time step (the image families call their input size ``n_visible``)."""
        return self.n_in

    @property
    def image_shape(self) -> tuple[int, int]:
        """The shape of one example: (time steps, inputs per step)."""
        return (self.length, self.n_in)

    @property
    def train_x(self) -> torch.Tensor:
        return self.train_in

    @property
    def test_x(self) -> torch.Tensor:
        return self.test_in

    @property
    def n_train(self) -> int:
        return int(self.train_in.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.test_in.shape[0])

    @property
    def is_text(self) -> bool:
        return self.name == "text"

    # -- batches ---------------------------------------------------------------------------------------
    def inputs(self, split: str, idx: torch.Tensor | slice) -> torch.Tensor:
        """Float inputs (B, T, n_in) of the sequences ``idx`` of ``split`` ("train" | "test")."""
        data = self.train_in if split == "train" else self.test_in
        rows = data[idx]
        if self.is_text:
            return self.one_hot(rows[:, :-1])
        return rows

    def targets(self, split: str, idx: torch.Tensor | slice) -> torch.Tensor:
        if self.is_text:
            data = self.train_in if split == "train" else self.test_in
            return data[idx][:, 1:]
        targets = self.train_out if split == "train" else self.test_out
        assert targets is not None, "every task but text carries its targets"
        return targets[idx]

    def one_hot(self, indices: torch.Tensor) -> torch.Tensor:
        return F.one_hot(indices, self.n_in).to(torch.float32)

    def to(self, device: torch.device) -> SequenceData:
        for name in ("train_in", "train_out", "test_in", "test_out"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.to(device))
        return self

    # -- text ------------------------------------------------------------------------------------------
    def encode(self, text: str) -> torch.Tensor:
        index = {ch: i for i, ch in enumerate(self.vocab)}
        unk = index.get(UNKNOWN_CHAR, 0)
        return torch.tensor([index.get(ch, unk) for ch in text], dtype=torch.long)

    def decode(self, indices) -> str:
        return "".join(self.vocab[int(i)] for i in indices)


# -- generated tasks ------------------------------------------------------------------------------------
def adding_problem(n: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, T, 2) of (value, marker), targets (n, 1) = the sum of the two marked values)."""
    values = rng.random((n, length), dtype=np.float32)
    markers = np.zeros((n, length), dtype=np.float32)
    half = length // 2
    rows = np.arange(n)
    markers[rows, rng.integers(0, half, n)] = 1.0
    markers[rows, rng.integers(half, length, n)] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values * markers).sum(1, keepdims=True).astype(np.float32)
    return x, y


def delayed_recall(n: int, lag: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, lag + 2, N_SYMBOLS + 1), targets (n,)): symbol at t = 0, ``lag`` distractors, then the cue."""
    length = lag + 2
    x = np.zeros((n, length, N_SYMBOLS + 1), dtype=np.float32)
    rows = np.arange(n)
    target = rng.integers(0, N_SYMBOLS, n)
    x[rows, 0, target] = 1.0
    if lag:
        distract = rng.integers(0, N_SYMBOLS, (n, lag))
        x[rows[:, None], np.arange(1, lag + 1)[None, :], distract] = 1.0
    x[:, -1, N_SYMBOLS] = 1.0  # the cue: "now say it"
    return x, target.astype(np.int64)


def periodic(n: int, length: int, rng: np.random.Generator, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, T, 1) = x_0..x_(T-1), targets (n, T, 1) = x_1..x_T) of a sine or sawtooth wave."""
    period = rng.uniform(MIN_PERIOD, MAX_PERIOD, (n, 1))
    phase = rng.random((n, 1))
    t = np.arange(length + 1)[None, :]
    cycles = t / period + phase
    if shape == "sine":
        wave = np.sin(2 * np.pi * cycles)
    else:
        wave = 2.0 * (cycles % 1.0) - 1.0
    wave = wave.astype(np.float32)[..., None]
    return wave[:, :-1], wave[:, 1:]


# -- text ------------------------------------------------------------------------------------------------
def stdlib_corpus() -> tuple[str, str]:
    """(text, description): pure-Python standard library modules of this Python, in a fixed order."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    parts, used = [], []
    for name in STDLIB_FILES:
        path = folder / name
        try:
            parts.append(path.read_text(encoding="utf-8"))
            used.append(name)
        except (OSError, UnicodeDecodeError):
            continue
    if not parts:
        raise DataError(f"{folder}: none of the standard library sources ({', '.join(STDLIB_FILES)}) could be "
                        "read; choose a text file of your own")
    return "\n".join(parts), f"Python {sysconfig.get_python_version()} standard library ({', '.join(used)})"


def read_text_file(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file; DataError naming the file when it is missing, empty or binary."""
    p = Path(path)
    try:
        raw = read_prefix(p, MAX_TEXT_CHARS * 4)  # a regular file only: a FIFO or a device is refused
    except UnsafeFileError as exc:
        raise DataError(str(exc).replace("is a folder, not a file", "is a folder, not a text file")) from None
    if not raw.strip():
        raise DataError(f"{p}: the file is empty")
    if b"\x00" in raw:
        raise DataError(f"{p}: a binary file (it contains NUL bytes), not text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(raw) - 4:  # not just a character cut at the read limit
            raise DataError(f"{p}: not UTF-8 text (byte {exc.start} cannot be decoded); a binary file?") from None
        text = raw[:exc.start].decode("utf-8")
    return text[:MAX_TEXT_CHARS]


def min_text_chars(length: int) -> int:
    """The shortest text that gives ten training chunks of ``length`` characters and one held-out chunk."""
    return int(math.ceil(11 * (length + 1) / (1.0 - HELDOUT_SHARE))) + 1


def text_task(text: str, length: int, source: str, eval_samples: int, where: str = "the text") -> SequenceData:
    if len(text) < min_text_chars(length):
        raise DataError(f"{where}: too short for a language model with sequences of {length} characters "
                        f"({len(text)} characters, needs at least {min_text_chars(length)})")
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    if len(counts) > MAX_VOCAB:
        keep = set(sorted(counts, key=lambda c: (-counts[c], c))[:MAX_VOCAB - 1])
        text = "".join(ch if ch in keep else UNKNOWN_CHAR for ch in text)
        counts = {}
        for ch in text:
            counts[ch] = counts.get(ch, 0) + 1
    vocab = "".join(sorted(counts))
    index = {ch: i for i, ch in enumerate(vocab)}
    codes = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    n_test_chars = max(length + 2, int(len(text) * HELDOUT_SHARE))
    split = len(text) - n_test_chars
    train_codes, test_codes = codes[:split], codes[split:]

    def chunks(c: torch.Tensor, limit: int | None = None) -> torch.Tensor:
        n = (len(c) - 1) // length
        if limit is not None:
            n = min(n, limit)
        return torch.stack([c[k * length:k * length + length + 1] for k in range(n)])

    train, test = chunks(train_codes), chunks(test_codes, eval_samples)
    # baseline: each held-out character predicted with the training set's character frequencies
    freq = torch.bincount(train_codes, minlength=len(vocab)).double() + 0.5
    logp = torch.log(freq / freq.sum())
    baseline = float(-logp[test[:, 1:].reshape(-1)].mean())
    return SequenceData("text", "classes", True, len(vocab), len(vocab), length, train, None, test, None,
                        baseline, source=source, vocab=vocab, heldout_text=text[split:])


# -- the factory ----------------------------------------------------------------------------------------
def make_task(task: str, length: int, *, seed: int = 0, n_train: int = 10000, eval_samples: int = 1000,
              text_file: str | None = None) -> SequenceData:
    """Build ``task`` with sequences of ``length`` steps (recall: the lag), seeded; DataError on a bad text file."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if task == "text":
        if text_file:
            text = read_text_file(text_file)
            source = f"{Path(text_file).name} ({len(text):,} characters)"
            return text_task(text, length, source, eval_samples, where=str(text_file))
        text, source = stdlib_corpus()
        return text_task(text, length, f"{source}, {len(text):,} characters", eval_samples)
    # what the sequences will hold (inputs and targets, float32, with the generator's temporaries)
    features = {"adding": 2 + 1, "recall": N_SYMBOLS + 2}.get(task, 2)
    per_sequence = (length + 2) * features * 4 * 3
    check_memory(f"n_train = {n_train:,} sequences of {length} steps", n_train * per_sequence, "n_train")
    check_memory(f"eval_samples = {eval_samples:,} sequences of {length} steps", eval_samples * per_sequence,
                 "eval_samples")
    rng_train = np.random.default_rng([seed, 1])
    rng_test = np.random.default_rng([seed, 2])  # the held-out set does not change with n_train
    if task == "adding":
        (xtr, ytr), (xte, yte) = adding_problem(n_train, length, rng_train), adding_problem(eval_samples, length, rng_test)
        kind, every, n_in, n_out, steps = "regression", False, 2, 1, length
    elif task == "recall":
        (xtr, ytr), (xte, yte) = delayed_recall(n_train, length, rng_train), delayed_recall(eval_samples, length, rng_test)
        kind, every, n_in, n_out, steps = "classes", False, N_SYMBOLS + 1, N_SYMBOLS, length + 2
    else:
        (xtr, ytr), (xte, yte) = (periodic(n_train, length, rng_train, task),
                                  periodic(eval_samples, length, rng_test, task))
        kind, every, n_in, n_out, steps = "regression", True, 1, 1, length
    train_in, train_out = torch.from_numpy(xtr), torch.from_numpy(ytr)
    test_in, test_out = torch.from_numpy(xte), torch.from_numpy(yte)
    if kind == "regression":
        baseline = float(((test_out - train_out.mean()) ** 2).mean())
        source = f"{n_train:,} generated training sequences, {eval_samples:,} held-out"
    else:
        baseline = math.log(N_SYMBOLS)
        source = f"{N_SYMBOLS} symbols, {n_train:,} generated training sequences, {eval_samples:,} held-out"
    symbols = tuple("ABCDEFGH"[:N_SYMBOLS]) if task == "recall" else ()
    return SequenceData(task, kind, every, n_in, n_out, steps, train_in, train_out, test_in, test_out, baseline,
                        source=source, symbols=symbols)
