#!/usr/bin/env python3
"""Write Tests/Fixtures/metrics.safetensors: video pairs with their PSNR and SSIM computed by
scikit-image, an implementation independent of the Swift `VideoMetrics` it checks.

Videos are [3, T, H, W] float32 in [-1, 1] (the model's output convention); the metrics map x to
(x + 1) / 2, clamp to [0, 1], PSNR over all RGB values (peak 1), SSIM on luma
Y = 0.299 R + 0.587 G + 0.114 B per frame with skimage's
structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1),
averaged over frames.

Pairs: a smooth random video against a noisy copy, against a shifted and contrast-changed copy,
a pair with values outside [-1, 1] (clamped first), and a non-square 13x17 frame size.

Needs numpy and scikit-image. Usage: python3 tools/make_metric_fixtures.py Tests/Fixtures
"""
import json
import struct
import sys

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: header JSON padded to 8 bytes, tensors in name order."""
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = {np.float32: "F32", np.float64: "F64"}[array.dtype.type]
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def unit(video):
    return np.clip((video.astype(np.float64) + 1) / 2, 0, 1)


def metrics(video, reference):
    a, b = unit(video), unit(reference)
    psnr = peak_signal_noise_ratio(b, a, data_range=1.0)
    luma = lambda v: 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]   # [T, H, W]
    ya, yb = luma(a), luma(b)
    ssim = np.mean([structural_similarity(ya[t], yb[t], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=1.0) for t in range(a.shape[1])])
    return psnr, ssim


def smooth_video(rng, frames, height, width):
    """Low-frequency colour fields that move a little from frame to frame, in [-0.9, 0.9]."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    channels = []
    for _ in range(3):
        fx, fy, ft, phase = rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5), rng.uniform(0.05, 0.3), rng.uniform(0, 6.3)
        channels.append(0.9 * np.sin(fx * x + fy * y + ft * t + phase))
    return np.stack(channels).astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures"
    rng = np.random.default_rng(20261130)
    pairs = {}
    base = smooth_video(rng, 4, 32, 32)
    pairs["noisy"] = (base + rng.normal(0, 0.05, base.shape).astype(np.float32), base)
    pairs["contrast"] = (np.float32(0.8) * base + np.float32(0.1), base)
    pairs["clamped"] = ((base * np.float32(1.3)).astype(np.float32), base + rng.normal(0, 0.2, base.shape).astype(np.float32))
    odd = smooth_video(rng, 3, 13, 17)
    pairs["odd_size"] = (odd + rng.normal(0, 0.1, odd.shape).astype(np.float32), odd)
    tensors, expected = {}, {}
    for name, (video, reference) in pairs.items():
        psnr, ssim = metrics(video, reference)
        tensors[f"{name}.video"] = video.astype(np.float32)
        tensors[f"{name}.reference"] = reference.astype(np.float32)
        tensors[f"{name}.psnr"] = np.array([psnr], dtype=np.float64)
        tensors[f"{name}.ssim"] = np.array([ssim], dtype=np.float64)
        expected[name] = {"psnr": psnr, "ssim": ssim}
    import skimage
    write_safetensors(f"{out}/metrics.safetensors", tensors,
                      {"generator": "tools/make_metric_fixtures.py", "skimage": skimage.__version__, "numpy": np.__version__,
                       "expected": json.dumps(expected)})
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
