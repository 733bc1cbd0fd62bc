#!/usr/bin/env python3
"""The scene world of the bundled demo model (issue 6).

Short RGB videos of one coloured shape moving over a plain background, described by prompts of a
small grammar:

    a <colour> <shape> moving <left|right|up|down> on a <background> background
    a <colour> <shape> growing on a <background> background

Everything is deterministic from a seed (numpy's PCG64 via ``numpy.random.default_rng``).
Frames are rendered with 4x4 supersampling (anti-aliased edges, sub-pixel motion).

Video layout returned by ``render``: float32 [T, H, W, 3] with RGB in [0, 1]; ``to_model`` turns
it into the model's layout [3, T, H, W] with values in [-1, 1].

Command line:
    python tools/scenes.py --prompt "a red circle moving left on a blue background" --seed 3
    python tools/scenes.py --list-eval        # the held-out combinations
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

FRAMES = 8
HEIGHT = 32
WIDTH = 32
SUPERSAMPLE = 4

# Object colours (RGB in [0, 1]). Saturated and far apart so a judge can tell them from frames.
COLOURS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "white": (1.0, 1.0, 1.0),
}
BACKGROUNDS = {
    "black": (0.0, 0.0, 0.0),
    "gray": (0.5, 0.5, 0.5),
    "white": (1.0, 1.0, 1.0),
    "blue": (0.0, 0.0, 1.0),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down", "growing")

# Size ranges in pixels (bounding extent of the shape). Objects are large on purpose: 10-25% of
# the frame, so the plain MSE of the diffusion loss is not dominated by the background.
SIZE_RANGE = (11.0, 15.0)          # translating objects
SPEED_RANGE = (1.6, 2.2)           # pixels per frame -> 11..15 px over 8 frames
GROW_START = (6.0, 8.0)            # growing: start size
GROW_FACTOR = (2.0, 2.3)           # growing: end size = start * factor
TRIANGLE_SCALE = 1.2               # triangles cover half their box: draw them a bit larger


def prompt_of(colour: str, shape: str, motion: str, background: str) -> str:
    if motion == "growing":
        return f"a {colour} {shape} growing on a {background} background"
    return f"a {colour} {shape} moving {motion} on a {background} background"


def parse_prompt(prompt: str) -> dict:
    """Attributes of a grammar prompt: {'colour', 'shape', 'motion', 'background'}."""
    words = prompt.strip().lower().rstrip(".").split()
    try:
        if len(words) == 8 and words[3] == "growing":
            a, colour, shape, motion, on, a2, bg, background = words
        elif len(words) == 9 and words[3] == "moving":
            a, colour, shape, _, motion, on, a2, bg, background = words
        else:
            raise ValueError
        if (a, on, a2, background) != ("a", "on", "a", "background"):
            raise ValueError
        if colour not in COLOURS or shape not in SHAPES or motion not in MOTIONS or bg not in BACKGROUNDS:
            raise ValueError
    except ValueError:
        raise ValueError(f"not a scene prompt: {prompt!r} (expected e.g. "
                         f"'a red circle moving left on a blue background')") from None
    return {"colour": colour, "shape": shape, "motion": motion, "background": bg}


def vocabulary() -> list[str]:
    """Every word the grammar can produce, in a fixed order."""
    words = ["a", "moving", "growing", "on", "background"]
    words += [m for m in MOTIONS if m != "growing"]
    words += list(COLOURS) + list(SHAPES)
    words += [b for b in BACKGROUNDS if b not in words]
    return words


def all_combinations() -> list[tuple[str, str, str, str]]:
    """(colour, shape, motion, background) with object colour != background colour."""
    return [(c, s, m, b) for c in COLOURS for s in SHAPES for m in MOTIONS for b in BACKGROUNDS
            if COLOURS[c] != BACKGROUNDS[b]]


def held_out_combinations() -> list[tuple[str, str, str, str]]:
    """The slice of combinations that training never sees (eval.txt draws from it).

    A balanced, fixed list: every colour, shape, motion and background appears several times,
    but never in these exact combinations during training.
    """
    cols, shs, mos, bgs = list(COLOURS), list(SHAPES), list(MOTIONS), list(BACKGROUNDS)
    out = []
    i = 0
    while len(out) < 32:
        c = cols[i % 7]
        s = shs[(i // 7 + i) % 3]
        m = mos[(2 * i + i // 5) % 5]
        b = bgs[(3 * i + i // 4 + 1) % 4]
        combo = (c, s, m, b)
        if COLOURS[c] != BACKGROUNDS[b] and combo not in out:
            out.append(combo)
        i += 1
    return out


HELD_OUT = frozenset(held_out_combinations())


def training_combinations() -> list[tuple[str, str, str, str]]:
    return [c for c in all_combinations() if c not in HELD_OUT]


_ALL = all_combinations()
_TRAIN = training_combinations()


def _trajectory(rng: np.random.Generator, shape: str, motion: str, frames: int, height: int, width: int):
    """Per-frame centre x, centre y and size (float64 arrays of length `frames`)."""
    t = np.arange(frames, dtype=np.float64)
    k = TRIANGLE_SCALE if shape == "triangle" else 1.0
    if motion == "growing":
        s0 = rng.uniform(*GROW_START) * k
        s1 = s0 * rng.uniform(*GROW_FACTOR)
        size = s0 + (s1 - s0) * t / (frames - 1)
        cx = np.full(frames, rng.uniform(s1 / 2, width - s1 / 2))
        cy = np.full(frames, rng.uniform(s1 / 2, height - s1 / 2))
        return cx, cy, size
    s = rng.uniform(*SIZE_RANGE) * k
    size = np.full(frames, s)
    v = rng.uniform(*SPEED_RANGE)
    d = v * (frames - 1)
    # moving along x (left/right) or y (up/down); the object stays fully inside the frame.
    along_len = width if motion in ("left", "right") else height
    across_len = height if motion in ("left", "right") else width
    lo, hi = s / 2, along_len - s / 2 - d
    if hi < lo:                      # too big for the trip: shorten the trip
        d = along_len - s
        hi = lo
        v = d / (frames - 1)
    start = rng.uniform(lo, hi)
    along = start + v * t                      # increasing coordinate
    if motion in ("left", "up"):
        along = along_len - along              # decreasing coordinate
    across = np.full(frames, rng.uniform(s / 2, across_len - s / 2))
    if motion in ("left", "right"):
        return along, across, size
    return across, along, size


def scene_params(seed: int, combo: tuple[str, str, str, str] | None = None,
                 frames: int = FRAMES, height: int = HEIGHT, width: int = WIDTH,
                 allow_held_out: bool = True) -> dict:
    """Parameters of one scene. combo None: a random combination (training ones only when
    allow_held_out is False)."""
    rng = np.random.default_rng(seed)
    if combo is None:
        pool = _ALL if allow_held_out else _TRAIN
        combo = pool[int(rng.integers(len(pool)))]
    colour, shape, motion, background = combo
    if COLOURS[colour] == BACKGROUNDS[background]:
        raise ValueError(f"object colour equals background colour: {colour} on {background}")
    cx, cy, size = _trajectory(rng, shape, motion, frames, height, width)
    return {
        "prompt": prompt_of(colour, shape, motion, background),
        "colour": colour, "shape": shape, "motion": motion, "background": background,
        "cx": cx, "cy": cy, "size": size, "frames": frames, "height": height, "width": width,
    }


def render_batch(params: list[dict], backend=None):
    """Render many scenes of one size. backend None: numpy float32 [B, T, H, W, 3] in [0, 1].
    backend a torch.device: the same computation in torch on that device (for fast training);
    it matches numpy to float32 rounding."""
    T, H, W = params[0]["frames"], params[0]["height"], params[0]["width"]
    ss = SUPERSAMPLE
    sub = (np.arange(ss, dtype=np.float64) + 0.5) / ss
    ys = (np.arange(H)[:, None] + sub[None, :]).reshape(-1)     # [H*ss] sample y positions
    xs = (np.arange(W)[:, None] + sub[None, :]).reshape(-1)     # [W*ss]
    cx = np.stack([p["cx"] for p in params])[:, :, None, None]  # [B, T, 1, 1]
    cy = np.stack([p["cy"] for p in params])[:, :, None, None]
    s = np.stack([p["size"] for p in params])[:, :, None, None]
    shape = np.array([SHAPES.index(p["shape"]) for p in params])[:, None, None, None]
    obj = np.array([COLOURS[p["colour"]] for p in params])[:, None, None, None, :]
    bg = np.array([BACKGROUNDS[p["background"]] for p in params])[:, None, None, None, :]
    arrays = [ys[None, None, :, None], xs[None, None, None, :], cx, cy, s, shape, obj, bg]
    if backend is not None:
        import torch
        arrays = [torch.as_tensor(a, dtype=torch.float32, device=backend) for a in arrays]
    else:
        arrays = [a.astype(np.float32) for a in arrays]
    Y, X, cx, cy, s, shape, obj, bg = arrays
    dx, dy = X - cx, Y - cy
    half = s / 2
    circle = (dx * dx + dy * dy <= half * half) * 1.0
    square = (abs(dx) <= half) * (abs(dy) <= half) * 1.0
    # triangle pointing up: apex (cx, cy - s/2), base y = cy + s/2 of width s
    depth = dy + half                                     # 0 at the apex, s at the base
    triangle = (depth >= 0) * (depth <= s) * (abs(dx) <= depth / 2) * 1.0
    inside = circle * (shape == 0) + square * (shape == 1) + triangle * (shape == 2)
    B = inside.shape[0]
    cov = inside.reshape(B, T, H, ss, W, ss).mean(5).mean(3)  # [B, T, H, W]
    return bg + cov[..., None] * (obj - bg)


def render(seed: int, combo=None, **kw) -> tuple[np.ndarray, dict]:
    """One scene: (video float32 [T, H, W, 3] in [0, 1], params)."""
    p = scene_params(seed, combo, **kw)
    return render_batch([p])[0], p


def to_model(video):
    """[.., T, H, W, 3] in [0, 1] -> [.., 3, T, H, W] in [-1, 1] (numpy or torch)."""
    nd = video.ndim
    perm = tuple(range(nd - 4)) + (nd - 1, nd - 4, nd - 3, nd - 2)
    x = video.transpose(*perm) if isinstance(video, np.ndarray) else video.permute(*perm)
    return x * 2 - 1


def from_model(x):
    """[.., 3, T, H, W] in [-1, 1] -> [.., T, H, W, 3] in [0, 1], clipped (numpy)."""
    x = np.asarray(x, dtype=np.float32)
    nd = x.ndim
    perm = tuple(range(nd - 4)) + (nd - 3, nd - 2, nd - 1, nd - 4)
    return np.clip((x.transpose(*perm) + 1) / 2, 0, 1)


def save_gif(video: np.ndarray, path: str, scale: int = 4):
    """Write a [T, H, W, 3] video in [0, 1] as an animated GIF (needs Pillow) or PPM strip."""
    frames = (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8)
    frames = frames.repeat(scale, 1).repeat(scale, 2)
    try:
        from PIL import Image
        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=150, loop=0)
    except ImportError:
        strip = np.concatenate(list(frames), axis=1)
        with open(path.rsplit(".", 1)[0] + ".ppm", "wb") as f:
            f.write(b"P6 %d %d 255\n" % (strip.shape[1], strip.shape[0]))
            f.write(strip.tobytes())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="write an animated GIF (or PPM strip) here")
    ap.add_argument("--list-eval", action="store_true", help="print the held-out combinations")
    ap.add_argument("--vocab", action="store_true")
    a = ap.parse_args(argv)
    if a.vocab:
        print(" ".join(vocabulary()))
        return
    if a.list_eval:
        for c in held_out_combinations():
            print(prompt_of(*c))
        return
    combo = None
    if a.prompt:
        at = parse_prompt(a.prompt)
        combo = (at["colour"], at["shape"], at["motion"], at["background"])
    video, p = render(a.seed, combo)
    print(p["prompt"])
    if a.out:
        save_gif(video, a.out)
    else:
        # coarse text preview of frames 0 and last
        for f in (0, video.shape[0] - 1):
            bgc = np.array(BACKGROUNDS[p["background"]], dtype=np.float32)
            m = np.abs(video[f] - bgc).sum(-1) > 0.5
            print(f"frame {f}")
            print("\n".join("".join("#" if v else "." for v in row) for row in m))


if __name__ == "__main__":
    sys.exit(main())
