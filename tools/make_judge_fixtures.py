#!/usr/bin/env python3
"""Videos *generated* by the bundled demo model, with tools/judge.py's verdicts, for the Swift
judge's parity test (rendered scenes are too clean to tell two shape rules apart).

Writes Tests/Fixtures/judge-parity.safetensors: `videos` U8 [N, 3, T, H, W] (RGB, 0..255, the
Python sampler's output of the first N eval prompts, seed 0) and metadata `prompts` (JSON list)
and `judged` (JSON list of {colour, shape, motion, background, ious}), judged on the U8 videos
converted as the Swift test converts them.

Usage: tools/.venv/bin/python tools/make_judge_fixtures.py [N [OUT]]   (OUT: another output file)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import judge  # noqa: E402
import scenes  # noqa: E402
import train_demo  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    torch.set_num_threads(2)
    model = train_demo.load_checkpoint(str(ROOT / "Sources/DemoModel/Resources/demo/model.safetensors"))
    prompts = train_demo.read_prompts(str(ROOT / "sample-prompts/eval.txt"))[:n]
    vids = train_demo.sample(model, prompts, [0] * n)
    u8 = np.round(scenes.from_model(np.asarray(vids)) * 255).astype(np.uint8)     # [N, T, H, W, 3]
    judged = []
    for v in u8:
        # The Swift test's conversion, in the same float32 steps: u8 / 127.5 - 1, then (x + 1) / 2.
        x = v.astype(np.float32) / np.float32(127.5) - np.float32(1)
        j = judge.judge((x + np.float32(1)) / np.float32(2))
        judged.append({k: j[k] for k in ("colour", "shape", "motion", "background")} | {"ious": j["ious"]})
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "Tests/Fixtures/judge-parity.safetensors"
    save_file({"videos": np.ascontiguousarray(u8.transpose(0, 4, 1, 2, 3))}, str(out),
              metadata={"prompts": json.dumps(prompts), "judged": json.dumps(judged),
                        "note": "demo-model samples judged by tools/judge.py (tools/make_judge_fixtures.py)"})
    for p, j in zip(prompts, judged):
        print(f"{p:55s} -> {j['colour']} {j['shape']} {j['motion']} {j['background']}  "
              + " ".join(f"{v:.3f}" for v in j["ious"]))


if __name__ == "__main__":
    main()
