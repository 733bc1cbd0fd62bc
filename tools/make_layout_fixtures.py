#!/usr/bin/env python3
"""Write small random-weight checkpoints with OpenSora's exact state-dict layout.

They carry the real key names and shape rules of OPENSORA.md §2 (STDiT3 v1.2 and STDiT v1.0) at
toy sizes, so loaders, `inspect` and the workbench's layer tree and weight-range screens can be
tested without real weights. Weights are Gaussian with a few planted outlier *input* channels
(the pattern SmoothQuant targets) and a few loud *output* channels, at fixed seeds.

Needs only numpy. Usage: python3 tools/make_layout_fixtures.py Tests/Fixtures
"""
import json
import struct
import sys

import numpy as np


def write_safetensors(path, tensors, metadata):
    """Minimal safetensors writer: header JSON padded to 8 bytes, tensors widest dtype first."""
    names = sorted(tensors, key=lambda n: -tensors[n].dtype.itemsize)
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for name in names:
        array = np.ascontiguousarray(tensors[name])
        dtype = {np.float32: "F32", np.float16: "F16"}[array.dtype.type]
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


def linear(rng, out_f, in_f, prefix, tensors, outliers_in=0, outliers_out=0):
    w = (rng.standard_normal((out_f, in_f)) / np.sqrt(in_f)).astype(np.float32)
    if outliers_in:
        cols = rng.choice(in_f, outliers_in, replace=False)
        w[:, cols] *= rng.uniform(8, 20, size=outliers_in).astype(np.float32)
    if outliers_out:
        rows = rng.choice(out_f, outliers_out, replace=False)
        w[rows, :] *= 6
    tensors[prefix + ".weight"] = w
    tensors[prefix + ".bias"] = (rng.standard_normal(out_f) * 0.02).astype(np.float32)


def block(rng, prefix, c, mlp, tensors, qk_norm, temporal_v1=False):
    tensors[prefix + "scale_shift_table"] = (rng.standard_normal((6, c)) / np.sqrt(c)).astype(np.float32)
    linear(rng, 3 * c, c, prefix + "attn.qkv", tensors, outliers_in=2)
    if qk_norm:
        d = c // 4
        tensors[prefix + "attn.q_norm.weight"] = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
        tensors[prefix + "attn.k_norm.weight"] = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    linear(rng, c, c, prefix + "attn.proj", tensors, outliers_out=1)
    linear(rng, c, c, prefix + "cross_attn.q_linear", tensors)
    linear(rng, 2 * c, c, prefix + "cross_attn.kv_linear", tensors, outliers_in=1)
    linear(rng, c, c, prefix + "cross_attn.proj", tensors)
    linear(rng, mlp, c, prefix + "mlp.fc1", tensors, outliers_in=3)
    linear(rng, c, mlp, prefix + "mlp.fc2", tensors, outliers_in=4, outliers_out=2)
    if temporal_v1:
        linear(rng, 3 * c, c, prefix + "attn_temp.qkv", tensors, outliers_in=1)
        linear(rng, c, c, prefix + "attn_temp.proj", tensors)


def globals_common(rng, c, cin, cout, patch, ctxt, ltxt, tensors, fps):
    pt, ph, pw = patch
    tensors["x_embedder.proj.weight"] = (rng.standard_normal((c, cin, pt, ph, pw)) * 0.1).astype(np.float32)
    tensors["x_embedder.proj.bias"] = np.zeros(c, np.float32)
    embedders = ["t_embedder"] + (["fps_embedder"] if fps else [])
    for name in embedders:
        linear(rng, c, 256, name + ".mlp.0", tensors)
        linear(rng, c, c, name + ".mlp.2", tensors)
    linear(rng, 6 * c, c, "t_block.1", tensors)
    linear(rng, c, ctxt, "y_embedder.y_proj.fc1", tensors)
    linear(rng, c, c, "y_embedder.y_proj.fc2", tensors)
    tensors["y_embedder.y_embedding"] = (rng.standard_normal((ltxt, ctxt)) / np.sqrt(ctxt)).astype(np.float32)
    tensors["final_layer.scale_shift_table"] = (rng.standard_normal((2, c)) / np.sqrt(c)).astype(np.float32)
    linear(rng, pt * ph * pw * cout, c, "final_layer.linear", tensors)


def stdit3(out_dir):
    rng = np.random.default_rng(20261126)
    c, depth, heads, cin, ctxt, ltxt, patch = 64, 2, 4, 4, 32, 8, (1, 2, 2)
    tensors = {}
    for i in range(depth):
        block(rng, f"spatial_blocks.{i}.", c, 4 * c, tensors, qk_norm=True)
        block(rng, f"temporal_blocks.{i}.", c, 4 * c, tensors, qk_norm=True)
    globals_common(rng, c, cin, 2 * cin, patch, ctxt, ltxt, tensors, fps=True)
    d = c // heads
    tensors["rope.freqs"] = (10000.0 ** (-np.arange(0, d // 2, dtype=np.float64) * 2 / d)).astype(np.float32)
    config = {"model_type": "STDiT3", "caption_channels": ctxt, "depth": depth, "hidden_size": c,
              "in_channels": cin, "input_sq_size": 512, "mlp_ratio": 4.0, "model_max_length": ltxt,
              "num_heads": heads, "patch_size": list(patch), "pred_sigma": True, "qk_norm": True}
    # Stored as f16, as many real checkpoints are; the loader converts on use.
    half = {k: v.astype(np.float16) for k, v in tensors.items()}
    write_safetensors(f"{out_dir}/stdit3-layout.safetensors", half,
                      {"format": "pt", "config": json.dumps(config),
                       "note": "random weights, OpenSora STDiT3 key layout (tools/make_layout_fixtures.py)"})


def stdit(out_dir):
    rng = np.random.default_rng(10)
    c, depth, cin, ctxt, ltxt, patch = 48, 2, 4, 32, 8, (1, 2, 2)
    tensors = {}
    for i in range(depth):
        block(rng, f"blocks.{i}.", c, 4 * c, tensors, qk_norm=False, temporal_v1=True)
    globals_common(rng, c, cin, 2 * cin, patch, ctxt, ltxt, tensors, fps=False)
    config = {"model_type": "STDiT", "caption_channels": ctxt, "depth": depth, "hidden_size": c,
              "in_channels": cin, "input_size": [4, 16, 16], "mlp_ratio": 4.0, "model_max_length": ltxt,
              "num_heads": 4, "patch_size": list(patch), "pred_sigma": True, "space_scale": 0.5, "time_scale": 1.0}
    write_safetensors(f"{out_dir}/stdit-layout.safetensors", tensors,
                      {"format": "pt", "config": json.dumps(config),
                       "note": "random weights, OpenSora STDiT v1.0 key layout (tools/make_layout_fixtures.py)"})


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures"
    stdit3(out)
    stdit(out)
