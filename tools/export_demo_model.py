#!/usr/bin/env python3
"""Ship a trained demo checkpoint: fp16 weights into the SwiftPM resource folder, and a golden
forward of that exact file (PyTorch, float32 compute on the fp16-rounded weights, the training
script's own model class) for the Swift parity test.

Usage: tools/.venv/bin/python tools/export_demo_model.py EXPORT_DIR
  reads  EXPORT_DIR/model.safetensors (train_demo.py's EMA export)
  writes Sources/DemoModel/Resources/demo/model.safetensors + config.json
         Tests/Fixtures/demo-golden.safetensors
"""
import json
import os
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import train_demo  # noqa: E402

PROMPT = "a red circle moving left on a blue background"


def main():
    src = Path(sys.argv[1]) / "model.safetensors"
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(src))
    half = {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}
    dst_dir = ROOT / "Sources/DemoModel/Resources/demo"
    dst_dir.mkdir(parents=True, exist_ok=True)
    meta = dict(meta)
    meta["description"] = meta.get("description", "stsq-tui demo STDiT3") + "; weights stored as fp16"
    tmp = dst_dir / "model.safetensors.tmp"
    save_file(half, str(tmp), metadata=meta)
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst_dir / "model.safetensors")
    (dst_dir / "config.json").write_text(json.dumps(json.loads(meta["config"]), indent=2) + "\n")

    torch.set_num_threads(1)
    model = train_demo.load_checkpoint(str(dst_dir / "model.safetensors")).float()
    st = model.stdit
    g = torch.Generator().manual_seed(1234)
    y, mask = model.encode([PROMPT], "cpu")                      # [1, 1, L, C], [1, L]
    y_all = torch.cat([y, st.y_embedder.y_embedding[None, None].float()], 0)
    x = torch.randn(2, st.in_channels, 8, 32, 32, generator=g)
    t = torch.tensor([700.0, 700.0])
    fps, h, w = torch.tensor([24.0]), torch.tensor([32.0]), torch.tensor([32.0])
    with torch.no_grad():
        out = st(x, t, y_all, mask, fps, h, w)
    save_file({"x": x.contiguous(), "timestep": t, "y": y_all.contiguous(), "mask": mask.to(torch.int64).contiguous(),
               "fps": fps, "height": h, "width": w, "out": out.float().contiguous(), "y_cond": y.contiguous()},
              str(ROOT / "Tests/Fixtures/demo-golden.safetensors"),
              metadata={"prompt": PROMPT, "training_steps": meta.get("training_steps", "?"),
                        "description": "PyTorch forward of the shipped demo checkpoint (train_demo.py's model class, "
                                       "fp32 compute on the fp16 weights): CFG batch [cond; null], t = 700"})
    print(f"shipped {src} (step {meta.get('training_steps')}) as fp16; golden |out| max {out.abs().max():.3f}")


if __name__ == "__main__":
    main()
