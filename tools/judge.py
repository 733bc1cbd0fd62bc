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
- shape: the template that best overlaps the mask. In each frame, each of the three shapes is
  drawn (4×4 supersampled coverage) with the mask's area, centred on the mask's centroid (the
  upward triangle on its centroid, 2/3 of the height below the apex), and compared by soft IoU
  Σ min(mask, cover) / Σ max(mask, cover). The mean IoU over the frames whose mask has at least 9
  pixels and does not touch the frame edge (all frames of 9+ pixels if every one does) picks the
  shape; no shape if no frame has 9 pixels or the best mean IoU is below 0.6. A bounding-box
  fill ratio, the first method, called a clean square a circle when one stray pixel widened its
  box;
- motion: area of the last two frames over the first two (>= 2.0: growing), else the larger of
  the centroid's x and y displacement from the first two frames to the last two decides
  left/right/up/down.

Self-test: python tools/judge.py --selftest 400  (must print 100% on every attribute)
Robustness: python tools/judge.py --perturbed 800  (shape accuracy with a stray pixel, blur, noise)
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


_SS = 4                                                   # template supersampling per axis
MIN_SHAPE_AREA = 9      # pixels: a frame's mask smaller than 3×3 has no shape to speak of
MIN_SHAPE_IOU = 0.6     # below this best mean IoU the mask is no shape of the grammar (noise, blobs)


def shape_templates(cx: float, cy: float, area: float, H: int, W: int) -> np.ndarray:
    """Coverage [3, H, W] in [0, 1] of a circle, a square and an upward triangle, each of `area`
    pixels with its centroid at (cx, cy). Pixel x spans [x, x + 1), so its centre is x + 0.5."""
    sub = (np.arange(_SS) + 0.5) / _SS
    ys = (np.arange(H)[:, None] + sub[None, :]).reshape(-1)[:, None] - cy     # [H*SS, 1]
    xs = (np.arange(W)[:, None] + sub[None, :]).reshape(-1)[None, :] - cx     # [1, W*SS]
    side, tri = np.sqrt(area), np.sqrt(2 * area)          # square side; triangle base = height
    circle = xs * xs + ys * ys <= area / np.pi
    square = (np.abs(xs) <= side / 2) & (np.abs(ys) <= side / 2)
    depth = ys + 2 * tri / 3                              # 0 at the apex, tri at the base
    triangle = (depth >= 0) & (depth <= tri) & (np.abs(xs) <= depth / 2)
    cover = np.stack([circle, square, triangle]).astype(np.float64)
    return cover.reshape(3, H, _SS, W, _SS).mean(axis=(2, 4))


def shape_ious(mask: np.ndarray, areas, cxs, cys) -> list[float]:
    """Mean soft IoU [circle, square, triangle] of the mask [T, H, W] with the templates, over the
    frames with at least MIN_SHAPE_AREA mask pixels that are clear of the frame edge (a clipped
    shape would be compared with whole templates); all such frames if every one touches the edge;
    [] if none has that many pixels."""
    T, H, W = mask.shape
    frames = [t for t in range(T) if areas[t] >= MIN_SHAPE_AREA]
    if not frames:
        return []
    inner = [t for t in frames
             if not (mask[t, 0].any() or mask[t, -1].any() or mask[t, :, 0].any() or mask[t, :, -1].any())]
    used = inner or frames
    total = np.zeros(3)
    for t in used:
        m = mask[t].astype(np.float64)
        cover = shape_templates(cxs[t], cys[t], areas[t], H, W)
        total += np.minimum(m, cover).sum(axis=(1, 2)) / np.maximum(m, cover).sum(axis=(1, 2))
    return [float(v) for v in total / len(used)]


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
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64) + 0.5
    areas, cxs, cys = [], [], []
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
    ious = shape_ious(mask, areas, cxs, cys)
    if ious and max(ious) >= MIN_SHAPE_IOU:
        out["shape"] = scenes.SHAPES[int(np.argmax(ious))]
    out["ious"] = ious
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


def perturbed(n: int) -> dict:
    """Shape accuracy on n rendered scenes under three perturbations a generated video shows: one
    object-coloured stray pixel above the object in every frame, a 5-point blur, and Gaussian
    noise (sigma 0.08, seed 0). Also the smallest margin between the best and the second template
    IoU on the clean renders."""
    combos = scenes.all_combinations()
    rng = np.random.default_rng(0)
    right = {"stray": 0, "blur": 0, "noise": 0}
    margin = np.inf
    for i in range(n):
        v, p = scenes.render(10_000 + i, combos[i % len(combos)])
        ious = sorted(judge(v)["ious"])
        margin = min(margin, ious[-1] - ious[-2])
        bg = np.array(scenes.BACKGROUNDS[p["background"]], dtype=np.float32)
        stray = v.copy()
        for t in range(v.shape[0]):
            ys, xs = np.where(np.abs(v[t] - bg).sum(-1) > 1e-3)
            if len(ys) and ys.min() > 0:
                stray[t, ys.min() - 1, xs[len(xs) // 2]] = scenes.COLOURS[p["colour"]]
        blur = v.copy()
        blur[:, 1:-1, 1:-1] = (4 * v[:, 1:-1, 1:-1] + v[:, :-2, 1:-1] + v[:, 2:, 1:-1]
                               + v[:, 1:-1, :-2] + v[:, 1:-1, 2:]) / 8
        noise = np.clip(v + rng.normal(0, 0.08, v.shape), 0, 1).astype(np.float32)
        for k, vv in (("stray", stray), ("blur", blur), ("noise", noise)):
            right[k] += judge(vv)["shape"] == p["shape"]
    return {**{k: r / n for k, r in right.items()}, "min_margin": float(margin)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--selftest", type=int, default=0, metavar="N")
    ap.add_argument("--perturbed", type=int, default=0, metavar="N",
                    help="shape accuracy on N rendered scenes with a stray pixel, blur or noise")
    a = ap.parse_args(argv)
    if a.perturbed:
        res = perturbed(a.perturbed)
        print(" ".join(f"{k}={v:.3f}" for k, v in res.items()))
        return 0
    if a.selftest:
        res = selftest(a.selftest)
        print(" ".join(f"{k}={v:.3f}" for k, v in res.items()))
        return 0 if res["fidelity"] == 1.0 else 1
    ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
