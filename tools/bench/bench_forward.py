#!/usr/bin/env python3
"""PyTorch baseline for `stsq-tui bench forward`: the reference STDiT3 (tools/opensora_ref) at the
same two sizes, float32, 2 threads, median of repeated forwards after warm-up.

Usage: tools/.venv/bin/python tools/bench/bench_forward.py [seconds-per-case]
"""
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from opensora_ref.stdit3 import STDiT3  # noqa: E402

CASES = [
    ("demo-size (C=192, depth 4, 2x3x8x32x32)",
     dict(model_type="STDiT3", hidden_size=192, depth=4, num_heads=3, patch_size=[1, 4, 4], in_channels=3,
          pred_sigma=False, caption_channels=32, model_max_length=12, mlp_ratio=4.0, qk_norm=True, input_sq_size=32),
     (2, 3, 8, 32, 32), 32.0, 32.0),
    ("XL width (C=1152, depth 2, 2x4x4x16x16)",
     dict(model_type="STDiT3", hidden_size=1152, depth=2, num_heads=16, patch_size=[1, 2, 2], in_channels=4,
          pred_sigma=True, caption_channels=4096, model_max_length=300, mlp_ratio=4.0, qk_norm=True, input_sq_size=512),
     (2, 4, 4, 16, 16), 128.0, 128.0),
]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, float32, {torch.get_num_threads()} threads (median after warm-up)")
    for name, cfg, shape, h, w in CASES:
        model = STDiT3(cfg).eval()
        L, cc = cfg["model_max_length"], cfg["caption_channels"]
        x = torch.randn(*shape)
        t = torch.full((shape[0],), 500.0)
        y = torch.randn(shape[0], 1, L, cc)
        mask = torch.ones(1, L, dtype=torch.int64)
        kw = dict(fps=torch.tensor([24.0]), height=torch.tensor([h]), width=torch.tensor([w]))
        with torch.inference_mode():
            for _ in range(2):
                model(x, t, y, mask, **kw)
            times, start = [], time.perf_counter()
            while len(times) < 5 or (len(times) < 50 and time.perf_counter() - start < seconds):
                t0 = time.perf_counter()
                model(x, t, y, mask, **kw)
                times.append(time.perf_counter() - t0)
        print(f"{name}: {statistics.median(times) * 1e3:.2f} ms ({len(times)} runs)")


if __name__ == "__main__":
    main()
