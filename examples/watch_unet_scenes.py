"""Watch a small U-Net learn to segment shapes, from your own training loop.

A plain PyTorch script: an encoder-decoder with skip connections labels every pixel of 32x32 scenes the
app generates (circles, squares and triangles over a noisy, textured background, with exact masks) as
background, circle, square or triangle. It prints the held-out pixel accuracy and the mean IoU over the
four classes after every epoch. Predicting "background" everywhere already scores about 82% pixel
accuracy but a mean IoU near 0.2; within a minute on a laptop's CPU the mean IoU climbs well above that.

The one line that matters is ``explorer.watch(...)``: while the script runs, open the window with

    python -m explorer attach 127.0.0.1:PORT        (the port the script prints on its first line)

to see the probe scene's class map, the feature maps of the encoder and decoder and the gradient norms
live. ``--control`` lets the window pause the loop and change the learning rate; ``--logdir runs/scenes``
also writes what is watched to a folder (``python -m explorer attach runs/scenes``); ``--no-watch`` runs
the bare loop, to measure what watching costs.

    python examples/watch_unet_scenes.py --listen 127.0.0.1:7000 --control --epochs 30
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
from example_options import folder, host_port, int_range, positive_float, usable_device  # (beside this file)

import explorer
from explorer.core.data.scenes import SHAPE_CLASSES, generate_scenes


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by batch norm and ReLU; the size stays."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
    )


class UNet(nn.Module):
    """Two levels down (max pool), two up (transposed convolution), each up joined with the encoder's
    maps of the same size: class logits (N, classes, H, W) at the input's H, W."""

    def __init__(self, classes: int = 4, width: int = 16):
        super().__init__()
        self.enc1 = conv_block(1, width)
        self.enc2 = conv_block(width, 2 * width)
        self.bottom = conv_block(2 * width, 4 * width)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = conv_block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = conv_block(2 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)                                      # (N, w, H, W)
        e2 = self.enc2(self.pool(e1))                          # (N, 2w, H/2, W/2)
        b = self.bottom(self.pool(e2))                         # (N, 4w, H/4, W/4)
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))   # (N, 2w, H/2, W/2)
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))  # (N, w, H, W)
        return self.head(d1)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, masks: torch.Tensor, classes: int) -> tuple[float, float]:
    """(pixel accuracy, mean IoU over the classes) on held-out scenes."""
    model.eval()
    pred = model(x).argmax(1)
    model.train()
    ious = []
    for c in range(classes):
        inter = ((pred == c) & (masks == c)).sum().item()
        union = ((pred == c) | (masks == c)).sum().item()
        if union:
            ious.append(inter / union)
    return (pred == masks).float().mean().item(), sum(ious) / len(ious)


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
    p.add_argument("--epochs", type=int_range(1), default=8)
    p.add_argument("--steps", type=int_range(0), default=0, help="stop after this many steps (0: run all the epochs)")
    p.add_argument("--scenes", type=int_range(1, 100_000), default=800, help="training scenes (200 more are held out)")
    p.add_argument("--batch-size", type=int_range(1, 1024), default=16)
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0)
    p.add_argument("--device", type=usable_device, default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--listen", type=host_port, default="127.0.0.1:0",
                   help="HOST:PORT the window attaches to (port 0: a free one)")
    p.add_argument("--logdir", type=folder, default=None, help="also write what is watched to this folder")
    p.add_argument("--control", action="store_true", help="let the window pause the loop and set the learning rate")
    p.add_argument("--no-watch", action="store_true", help="train without watching (the bare loop's speed)")
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    images, masks = generate_scenes(args.scenes + 200, 32, 32, seed=args.seed)
    x = torch.from_numpy(images)[:, None].to(args.device)  # (N, 1, 32, 32) in [0, 1]
    y = torch.from_numpy(masks).to(args.device)            # (N, 32, 32) class of each pixel
    x_train, y_train, x_test, y_test = x[:args.scenes], y[:args.scenes], x[args.scenes:], y[args.scenes:]
    classes = len(SHAPE_CLASSES)

    model = UNet(classes).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    probe, probe_target = x_test[:8], y_test[:8]  # the same 8 held-out scenes at every snapshot
    acc, miou = evaluate(model, x_test, y_test, classes)
    print(f"before training: pixel accuracy {acc:.1%}, mean IoU {miou:.3f}", flush=True)

    watcher = NoWatch() if args.no_watch else explorer.watch(
        model, probe=probe, target=probe_target, optimizer=opt, control=args.control,
        listen=args.listen, logdir=args.logdir, name="scenes U-Net")
    step, train_time = 0, 0.0
    with watcher:
        for epoch in range(1, args.epochs + 1):
            start = time.perf_counter()
            for batch in torch.randperm(len(x_train), device=args.device).split(args.batch_size):
                loss = loss_fn(model(x_train[batch]), y_train[batch])
                opt.zero_grad()
                loss.backward()
                opt.step()
                watcher.step(loss=loss.item(), epoch=epoch)
                step += 1
                if step == args.steps:
                    break
            train_time += time.perf_counter() - start
            acc, miou = evaluate(model, x_test, y_test, classes)
            print(f"epoch {epoch}: step {step}, loss {loss.item():.3f}, pixel accuracy {acc:.1%}, "
                  f"mean IoU {miou:.3f}", flush=True)
            if step == args.steps:
                break
    print(f"mean IoU {miou:.3f}, pixel accuracy {acc:.1%} after {step} steps; {step / train_time:.1f} steps/s "
          f"({train_time:.1f} s training{', not watched' if args.no_watch else ''})", flush=True)


if __name__ == "__main__":
    main()
