"""Watch a character-level LSTM learn to write, from your own training loop.

A plain PyTorch script: an embedding, a two-layer ``nn.LSTM`` and a linear read-out predict the next
character of a text (by default ``samples/text/learning.txt``, a short essay on watching networks learn;
give any UTF-8 text file instead). It prints the training loss and perplexity, the held-out loss, and now
and then a sample the network writes. Within a minute on a laptop's CPU the loss falls from ln(vocabulary)
(about 4, guessing) to well under 2, and the samples turn from noise into word-like text.

The one line that matters is ``explorer.watch(...)``: while the script runs, open the window with

    python -m explorer attach 127.0.0.1:PORT        (the port the script prints on its first line)

to see the LSTM's gates over the probe sentence, its weights and the gradient norms live. ``--control``
lets the window pause the loop and change the learning rate; ``--logdir runs/chars`` also writes what is
watched to a folder (``python -m explorer attach runs/chars``); ``--no-watch`` runs the bare loop, to
measure what watching costs.

    python examples/watch_char_lstm.py --listen 127.0.0.1:7000 --control --steps 3000
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from example_options import folder, host_port, int_range, positive_float, usable_device  # (beside this file)

import explorer

DEFAULT_TEXT = Path(__file__).resolve().parents[1] / "samples" / "text" / "learning.txt"


class CharLSTM(nn.Module):
    """Embedding - LSTM (2 layers) - linear: the logits of the next character at every step."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 128, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


@torch.no_grad()
def generate(model: CharLSTM, prompt: torch.Tensor, length: int, temperature: float = 0.8) -> list[int]:
    """``length`` characters sampled one at a time after ``prompt`` (a 1-d tensor of indices)."""
    model.eval()
    logits, state = model(prompt[None])
    out = []
    for _ in range(length):
        probs = F.softmax(logits[0, -1] / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1)
        out.append(int(nxt))
        logits, state = model(nxt[None], state)
    model.train()
    return out


class NoWatch:
    """Stands in for the watcher with --no-watch: the bare loop, for timing."""

    def step(self, **scalars):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("text", nargs="?", default=str(DEFAULT_TEXT), help="a UTF-8 text file (default: %(default)s)")
    p.add_argument("--steps", type=int_range(1), default=500)
    p.add_argument("--seq-len", type=int_range(1, 1024), default=64)
    p.add_argument("--batch-size", type=int_range(1, 1024), default=32)
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--print-every", type=int_range(1), default=50)
    p.add_argument("--sample-every", type=int_range(1), default=200)
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--device", type=usable_device, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--listen", type=host_port, default="127.0.0.1:0",
                   help="HOST:PORT the window attaches to (port 0: a free one)")
    p.add_argument("--logdir", type=folder, default=None, help="also write what is watched to this folder")
    p.add_argument("--control", action="store_true", help="let the window pause the loop and set the learning rate")
    p.add_argument("--no-watch", action="store_true", help="train without watching (the bare loop's speed)")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    try:
        text = Path(args.text).read_text(encoding="utf-8")
    except OSError as exc:
        p.error(f"{args.text}: cannot read it ({exc.strerror or exc})")
    except UnicodeDecodeError as exc:
        p.error(f"{args.text}: not a UTF-8 text file (byte {exc.start:,} is not UTF-8)")
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    data = torch.tensor([index[c] for c in text], dtype=torch.int64, device=args.device)
    split = int(len(data) * 0.9)  # the last 10% of the text is held out
    train, heldout = data[:split], data[split:]
    if len(heldout) <= 4 * args.seq_len + 1:  # the probe: 4 held-out windows one after another
        p.error(f"{args.text}: {len(text):,} characters is too short (at least "
                f"{10 * (4 * args.seq_len + 2):,} needed for --seq-len {args.seq_len})")
    print(f"{args.text}: {len(text):,} characters, {len(vocab)} distinct", flush=True)

    def windows(source: torch.Tensor, starts: torch.Tensor):
        """(inputs, targets): the sequences at ``starts`` and the same shifted by one character."""
        idx = starts[:, None] + torch.arange(args.seq_len + 1, device=starts.device)
        chunk = source[idx]
        return chunk[:, :-1], chunk[:, 1:]

    model = CharLSTM(len(vocab)).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # the probe: the same 4 held-out sentences at every snapshot; the held-out loss: 32 fixed windows
    probe, probe_target = windows(heldout, torch.arange(4, device=args.device) * args.seq_len)
    eval_x, eval_y = windows(heldout, torch.linspace(0, len(heldout) - args.seq_len - 1, 32,
                                                     device=args.device).long())

    watcher = NoWatch() if args.no_watch else explorer.watch(
        model, probe=probe, target=probe_target, optimizer=opt, control=args.control,
        listen=args.listen, logdir=args.logdir, name="char LSTM")
    train_time, start = 0.0, time.perf_counter()
    with watcher:
        for step in range(1, args.steps + 1):
            starts = torch.randint(0, len(train) - args.seq_len - 1, (args.batch_size,), device=args.device)
            x, y = windows(train, starts)
            logits, _ = model(x)
            loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            watcher.step(loss=loss.item())

            if step % args.print_every == 0 or step == args.steps:
                train_time += time.perf_counter() - start
                with torch.no_grad():
                    model.eval()
                    held = F.cross_entropy(model(eval_x)[0].reshape(-1, len(vocab)), eval_y.reshape(-1)).item()
                    model.train()
                print(f"step {step}: loss {loss.item():.3f} (perplexity {math.exp(loss.item()):.1f}), "
                      f"held-out loss {held:.3f}", flush=True)
                if step % args.sample_every == 0 or step == args.steps:
                    sample = generate(model, probe[0, :16], 160)
                    print("  " + repr("".join(vocab[i] for i in probe[0, :16].tolist() + sample)), flush=True)
                start = time.perf_counter()
    print(f"held-out loss {held:.3f} after {args.steps} steps (guessing: {math.log(len(vocab)):.3f}); "
          f"{args.steps / train_time:.1f} steps/s ({train_time:.1f} s training"
          f"{', not watched' if args.no_watch else ''})", flush=True)


if __name__ == "__main__":
    main()
