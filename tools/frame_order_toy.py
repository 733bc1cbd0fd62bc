#!/usr/bin/env python3
"""Can a small STDiT3 learn frame order from pure noise, and order chosen by a caption word?

Trains train_demo.STDiT3 (hidden 64, depth 2, heads 2, patch (pt, 4, 4), 16x16 frames) on input
x ~ N(0, I) at t = 999 (no signal at all) with the target a per-frame ramp from -1 (first frame)
to +1 (last), constant over pixels:
- plain:          target = ramp (order alone; RoPE gives only relative positions, so the model
                  must infer absolute order from the noise's edge statistics);
- --conditioned:  target = ±ramp, the sign chosen by one caption word (what "left" vs "right"
                  needs at high noise);
- --pairs:        with --conditioned, half of each batch has sign -1 and the same noise played
                  backwards as the other half (train_demo.py --reverse-pairs in miniature).
Prints the loss 4 times; the trivial loss is the target's variance.

Usage: tools/.venv/bin/python tools/frame_order_toy.py [--frames 8] [--pt 1] [--steps 400]
       [--conditioned] [--pairs] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_demo  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--pt", type=int, default=1)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--conditioned", action="store_true")
    ap.add_argument("--pairs", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.pairs and not a.conditioned:
        ap.error("--pairs needs --conditioned (a pair differs in the caption word's sign)")
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    T, B = a.frames, a.batch
    cfg = dict(train_demo.DEFAULT_CONFIG, hidden_size=64, depth=2, num_heads=2, patch_size=[a.pt, 4, 4],
               input_sq_size=16)
    model = train_demo.STDiT3(cfg)
    words = torch.randn(2, cfg["caption_channels"]) / cfg["caption_channels"] ** 0.5
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ramp = torch.linspace(-1, 1, T)[None, None, :, None, None]
    full = lambda v: torch.full((B,), float(v))  # noqa: E731
    mask = torch.ones(B, cfg["model_max_length"], dtype=torch.long)
    t0 = time.time()
    for i in range(a.steps):
        x = torch.randn(B, 3, T, 16, 16)
        sign = torch.randint(0, 2, (B,))
        if a.pairs:
            sign = torch.cat([torch.zeros(B // 2, dtype=torch.long), torch.ones(B - B // 2, dtype=torch.long)])
            x = torch.cat([x[:B // 2], x[:B - B // 2].flip(2)])
        y = torch.zeros(B, 1, cfg["model_max_length"], cfg["caption_channels"])
        if a.conditioned:
            y[:, 0, 3] = words[sign]
            target = ramp * (2 * sign - 1).float()[:, None, None, None, None]
        else:
            target = ramp.expand(B, 3, T, 16, 16)
        out = model(x, full(999), y, mask, full(train_demo.FPS), full(16), full(16))
        loss = (out - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % max(a.steps // 4, 1) == 0:
            print(f"step {i + 1} loss {loss.item():.4f} (trivial {target.var(unbiased=False).item():.3f}) "
                  f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
