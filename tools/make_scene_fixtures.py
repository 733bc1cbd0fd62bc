#!/usr/bin/env python3
"""Render a fixed set of scene-world videos for the Swift prompt-fidelity tests.

Writes Tests/Fixtures/scenes.safetensors: `videos` U8 [N, 3, T, H, W] (RGB, 0..255) and the
prompts as a JSON list in the metadata key `prompts`. Every shape × motion pair appears, with
colours and backgrounds cycling through the palette; seeds are fixed.

Usage: tools/.venv/bin/python tools/make_scene_fixtures.py [OUT]
"""
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scenes  # noqa: E402


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/scenes.safetensors"
    colours, backgrounds = list(scenes.COLOURS), list(scenes.BACKGROUNDS)
    videos, prompts = [], []
    i = 0
    for shape in scenes.SHAPES:
        for motion in scenes.MOTIONS:
            for repeat in range(3):
                colour = colours[i % len(colours)]
                background = backgrounds[(i // 2 + repeat) % len(backgrounds)]
                if scenes.COLOURS[colour] == scenes.BACKGROUNDS[background]:
                    background = backgrounds[(backgrounds.index(background) + 1) % len(backgrounds)]
                video, params = scenes.render(20_000 + i, (colour, shape, motion, background))
                videos.append(np.round(np.clip(video, 0, 1) * 255).astype(np.uint8).transpose(3, 0, 1, 2))
                prompts.append(params["prompt"])
                i += 1
    # ascontiguousarray: safetensors writes the raw buffer, and a stack of transposes is not C-ordered.
    save_file({"videos": np.ascontiguousarray(np.stack(videos))}, out,
              metadata={"prompts": json.dumps(prompts), "note": "scene-world renders (tools/make_scene_fixtures.py)"})
    print(f"{out}: {len(prompts)} videos")


if __name__ == "__main__":
    main()
