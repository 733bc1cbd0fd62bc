#!/usr/bin/env python3
"""Does a demo checkpoint use its prompt's motion word?

For each translating motion it noises real scene-world videos of that prompt to a noise level u
(x_t = (1 - u) x0 + u eps), asks the model for the clean video it implies (x0_hat = x_t + u v),
and measures how far the object's centroid travels along the motion axis from the first frame
to the last (pixels, signed along the motion, averaged over the batch). It does this twice: with
the true prompt and with the opposite motion word ("left" <-> "right", "up" <-> "down"). Their
difference is what the motion word contributes; a model that ignores the word scores 0 at every u.

Also printed: the travel of the mean of the clean videos (the ideal prediction as u -> 1). At
u = 0.99 the model sees almost no signal, so the travel it predicts there is what sampling can
draw on in its first steps. STDiT3 has no absolute temporal position (only RoPE in the temporal
blocks), so frame order at pure noise can come only from inside a token (temporal patch > 1) or
from what the model infers from the noise itself.

Usage: tools/.venv/bin/python tools/probe_motion.py CHECKPOINT [--u 0.99,0.95,0.9,0.8] [--n 16]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402
import train_demo  # noqa: E402

COLOUR, SHAPE, BACKGROUND = "red", "circle", "gray"
SIGN = {"left": ("x", -1), "right": ("x", 1), "up": ("y", -1), "down": ("y", 1)}


def centroids(x0: np.ndarray) -> np.ndarray:
    """x0 [3, T, H, W] in [-1, 1] -> [T, 2] centroid (x, y) of the object colour's weight."""
    v = (x0.transpose(1, 2, 3, 0) + 1) / 2
    obj = np.array(scenes.COLOURS[COLOUR]) - np.array(scenes.BACKGROUNDS[BACKGROUND])
    w = np.clip(((v - scenes.BACKGROUNDS[BACKGROUND]) * obj).sum(-1) / (obj * obj).sum(), 0, None)
    T, H, W = w.shape
    ys, xs = np.mgrid[0:H, 0:W] + 0.5
    tot = np.maximum(w.sum((1, 2)), 1e-6)
    return np.stack([(w * xs).sum((1, 2)) / tot, (w * ys).sum((1, 2)) / tot], 1)


def travel(x0: np.ndarray, motion: str) -> float:
    """Centroid displacement from the first frame to the last, signed along `motion` (px)."""
    axis, sign = SIGN[motion]
    c = centroids(x0)[:, 0 if axis == "x" else 1]
    return float(sign * (c[-1] - c[0]))


@torch.no_grad()
def probe(model, us, n=16, seed=0):
    """[(u, motion, travel with the true word, travel with the opposite word, ideal travel)]."""
    st = model.stdit
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    rows = []
    for u in us:
        for motion in SIGN:
            vids = np.stack([scenes.to_model(scenes.render(100 + i, (COLOUR, SHAPE, motion, BACKGROUND))[0])
                             for i in range(n)])
            x0 = torch.from_numpy(vids).float()
            eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
            xt = (1 - u) * x0 + u * eps
            got = []
            for word in (motion, train_demo.REVERSED_MOTION[motion]):
                y, mask = model.encode([scenes.prompt_of(COLOUR, SHAPE, word, BACKGROUND)] * n, "cpu")
                v = st(xt, full(u * 1000), y, mask, full(train_demo.FPS), full(scenes.HEIGHT), full(scenes.WIDTH))
                x0_hat = (xt + u * v).numpy()
                got.append(float(np.mean([travel(x, motion) for x in x0_hat])))
            rows.append((u, motion, got[0], got[1], travel(vids.mean(0), motion)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--u", default="0.99,0.95,0.9,0.8")
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = train_demo.load_checkpoint(a.checkpoint)
    print("travel of the object from the first frame to the last, px along the motion")
    for u, motion, true_word, opposite_word, ideal in probe(model, [float(s) for s in a.u.split(",")], a.n):
        print(f"u {u:.2f} {motion:5s} true word {true_word:+6.2f}  opposite word {opposite_word:+6.2f}  "
              f"word's effect {true_word - opposite_word:+6.2f}  ideal at u->1 {ideal:+6.2f}")


if __name__ == "__main__":
    sys.exit(main())
