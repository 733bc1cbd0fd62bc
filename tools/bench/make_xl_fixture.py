"""A real-scale test bed for the workbench on imported statistics (issue 17): a random-weight
STDiT3-XL/2 checkpoint (OpenSora v1.2's shapes, 1.1 B parameters, float32, ~4.8 GB, no text
encoder) and a synthetic calibration cache of the shape `stsq-collect` writes for it (every block
linear × 30 steps, 32 sampled rows each), keyed as `stsq-tui` looks it up.

    tools/.venv/bin/python tools/bench/make_xl_fixture.py OUT_DIR [--steps 30]

Then: `stsq-tui OUT_DIR/stdit3-xl.safetensors --calibration-prompts OUT_DIR/prompts.txt
--cache-directory OUT_DIR/cache`. Weights are N(0, 0.02²), statistics random: for timing and memory
only, not for quality figures.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stsq_collect"))
from stsq_collect import cache  # noqa: E402
from stsq_collect.collect import BLOCK_PREFIXES  # noqa: E402
from stsq_collect.generators import fnv1a_file  # noqa: E402
from stsq_collect.statistics import BIN_COUNT, LayerStepStatistics, hadamard_block, rotate  # noqa: E402

XL = {"model_type": "STDiT3", "caption_channels": 4096, "depth": 28, "hidden_size": 1152, "in_channels": 4,
      "input_sq_size": 512, "mlp_ratio": 4.0, "model_max_length": 300, "num_heads": 16, "patch_size": [1, 2, 2],
      "pred_sigma": True, "qk_norm": True}
SAMPLER = {"num_sampling_steps": 30, "cfg_scale": 7.0, "use_timestep_transform": True, "frames": 15, "height": 18,
           "width": 32, "fps": 24}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    from opensora_ref import STDiT3
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in STDiT3(XL).state_dict().items()}
    rng = np.random.default_rng(0)
    tensors = {k: (rng.standard_normal(s, dtype=np.float32) * 0.02) for k, s in shapes.items()}
    head = XL["hidden_size"] // XL["num_heads"]
    tensors["rope.freqs"] = (1.0 / 10000 ** (np.arange(0, head, 2, dtype=np.float32) / head)).astype(np.float32)
    path = out / "stdit3-xl.safetensors"
    sampler = dict(SAMPLER, num_sampling_steps=args.steps)
    save_file(tensors, str(path), metadata={"config": json.dumps(XL), "sampler": json.dumps(sampler)})
    print(f"{path}: {len(tensors)} tensors, {sum(int(np.prod(s)) for s in shapes.values()):,} parameters, "
          f"{path.stat().st_size / 1e9:.2f} GB")
    widths = {}
    for name, s in shapes.items():
        if name.startswith(BLOCK_PREFIXES) and name.endswith(".weight") and len(s) == 2:
            widths[name[: -len(".weight")]] = s[1]
    del tensors
    statistics = {}
    for layer, k in sorted(widths.items()):
        steps = {}
        for step in range(args.steps):
            st = LayerStepStatistics(k, 32)
            rows = rng.standard_normal((32, k), dtype=np.float32) * (1 + step / 10)
            st.reservoir = rows
            st.channel_min, st.channel_max = rows.min(0) * 3, rows.max(0) * 3
            st.minimum, st.maximum = st.channel_min.min(), st.channel_max.max()
            rotated = rotate(torch.from_numpy(rows), hadamard_block(k)).numpy()
            st.rotated_min, st.rotated_max = np.float32(rotated.min() * 3), np.float32(rotated.max() * 3)
            st.rows = 4320 * 40
            st.histogram = np.zeros(BIN_COUNT, dtype=np.uint64)
            st.histogram[150:200] = st.rows * k // 50
            steps[step] = st
        statistics[layer] = steps
    prompts = ["a cat on the moon"] * 2
    (out / "prompts.txt").write_text("\n".join(prompts) + "\n")
    key = cache.Key(fnv1a_file(str(path)), prompts, args.steps, SAMPLER["cfg_scale"], [0])
    folder = cache.save_cache(statistics, key, str(out / "cache"))
    size = sum(f.stat().st_size for f in Path(folder).iterdir())
    print(f"{folder}: {len(statistics)} layers × {args.steps} steps, {size / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
