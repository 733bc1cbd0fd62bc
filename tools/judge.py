#!/usr/bin/env python3
"""Frame-based prompt-fidelity judge for the demo scene world (tools/scenes.py).

From the frames alone it decides the background colour, the object colour, the shape and the
motion, and scores a video against its prompt: the fraction of the four attributes matched, and
each attribute separately.

Method (video [T, H, W, 3], RGB in [0, 1]):
- background: per-channel median of all pixels of all frames (the object covers < 30%), nearest
  background colour of the palette;
- object mask per frame: pixels whose RGB distance to the measured background exceeds 0.5;
- object colour: per-channel median of all mask pixels, nearest object colour of the palette
  (the background's own colour excluded);
- shape: fill ratio of the mask (area / bounding-box area) in each frame, median over frames:
  square ~1.0, circle ~0.79, triangle ~0.5 (thresholds 0.64 and 0.9);
- motion: area of the last two frames over the first two (>= 2.0: growing), else the larger of
  the centroid's x and y displacement from the first two frames to the last two decides
  left/right/up/down.

Self-test: python tools/judge.py --selftest 400  (must print 100% on every attribute)
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
import scenes  # noqa: E402

ATTRS = ("colour", "shape", "motion", "background")
_OBJ_NAMES = list(scenes.COLOURS)
_OBJ_RGB = np.array([scenes.COLOURS[c] for c in _OBJ_NAMES], dtype=np.float32)
_BG_NAMES = list(scenes.BACKGROUNDS)
_BG_RGB = np.array([scenes.BACKGROUNDS[c] for c in _BG_NAMES], dtype=np.float32)


def judge(video: np.ndarray) -> dict:
    """Attributes decided from frames: {'colour', 'shape', 'motion', 'background'} (+ details)."""
    v = np.asarray(video, dtype=np.float32)
    T, H, W, _ = v.shape
    bg_rgb = np.median(v.reshape(-1, 3), axis=0)
    bg = _BG_NAMES[int(np.argmin(((_BG_RGB - bg_rgb) ** 2).sum(1)))]
    dist = np.sqrt(((v - bg_rgb) ** 2).sum(-1))            # [T, H, W]
    mask = dist > 0.5
    out = {"background": bg, "colour": None, "shape": None, "motion": None}
    if mask.sum() == 0:
        return out
    obj_rgb = np.median(v[mask], axis=0)
    d = ((_OBJ_RGB - obj_rgb) ** 2).sum(1)
    d[np.all(_OBJ_RGB == scenes.BACKGROUNDS[bg], axis=1)] = np.inf
    out["colour"] = _OBJ_NAMES[int(np.argmin(d))]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32) + 0.5
    areas, cxs, cys, fills = [], [], [], []
    for t in range(T):
        m = mask[t]
        a = float(m.sum())
        areas.append(a)
        if a == 0:
            cxs.append(np.nan)
            cys.append(np.nan)
            continue
        cxs.append(float(xs[m].mean()))
        cys.append(float(ys[m].mean()))
        rows = np.where(m.any(1))[0]
        cols = np.where(m.any(0))[0]
        box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
        fills.append(a / box)
    if fills:
        f = float(np.median(fills))
        out["shape"] = "triangle" if f < 0.64 else ("circle" if f < 0.9 else "square")
        out["fill"] = f
    areas = np.array(areas)
    cxs, cys = np.array(cxs), np.array(cys)
    a0, a1 = areas[:2].mean(), areas[-2:].mean()
    growth = a1 / max(a0, 1.0)
    dx = np.nanmean(cxs[-2:]) - np.nanmean(cxs[:2])
    dy = np.nanmean(cys[-2:]) - np.nanmean(cys[:2])
    if not np.isfinite(dx) or not np.isfinite(dy):
        dx = dy = 0.0
    out.update(growth=float(growth), dx=float(dx), dy=float(dy))
    if growth >= 2.0:
        out["motion"] = "growing"
    elif abs(dx) >= abs(dy):
        out["motion"] = "right" if dx > 0 else "left"
    else:
        out["motion"] = "down" if dy > 0 else "up"
    return out


def score(video: np.ndarray, prompt: str) -> dict:
    """{'fidelity': fraction of the 4 attributes matched, 'colour': 0/1, ...}."""
    want = scenes.parse_prompt(prompt)
    got = judge(video)
    s = {k: float(got[k] == want[k]) for k in ATTRS}
    s["fidelity"] = sum(s[k] for k in ATTRS) / len(ATTRS)
    s["judged"] = {k: got[k] for k in ATTRS}
    return s


def summarize(scores: list[dict]) -> dict:
    keys = ("fidelity",) + ATTRS
    return {k: float(np.mean([s[k] for s in scores])) for k in keys}


def selftest(n: int) -> dict:
    scores, fails = [], []
    combos = scenes.all_combinations()
    for i in range(n):
        combo = combos[i % len(combos)]
        video, p = scenes.render(10_000 + i, combo)
        s = score(video, p["prompt"])
        scores.append(s)
        if s["fidelity"] < 1:
            fails.append((p["prompt"], s["judged"]))
    res = summarize(scores)
    for f in fails[:10]:
        print("FAIL", f)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", type=int, default=0, metavar="N")
    a = ap.parse_args(argv)
    if a.selftest:
        res = selftest(a.selftest)
        print(" ".join(f"{k}={v:.3f}" for k, v in res.items()))
        return 0 if res["fidelity"] == 1.0 else 1
    ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
