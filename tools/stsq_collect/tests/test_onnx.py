"""The ONNX QDQ export (`stsq_collect.onnx_export`) run by ONNX Runtime against the PyTorch
fake-quant of the same quantized export, one model evaluation per step model, same inputs."""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch

from stsq_collect.checkpoint import open_checkpoint
from stsq_collect.fakequant import apply_export
from stsq_collect.onnx_export import example_inputs

from conftest import DEMO
from test_fakequant import STEPS, make_exports

# PSNR (peak = the output's range) between ONNX Runtime and PyTorch: the same fake-quant, float32
# computed in another order (and ORT's x·(1/Δ) for x/Δ), so a few codes flip. Measured 61.3–63.6 dB
# at 10 steps, 61.2–62.2 dB at 4 steps, AVX-512.
PSNR_FLOOR = 55.0


def test_onnx_runtime_agrees_with_the_fake_quant(stsq_tui, tmp_path, monkeypatch):
    torch.set_num_threads(1)
    make_exports(stsq_tui, tmp_path)
    # As a user asks for it: `stsq-tui export --format onnx-qdq` runs this package's exporter on
    # the export it writes (the interpreter from STSQ_PYTHON).
    monkeypatch.setenv("STSQ_PYTHON", sys.executable)
    printed = stsq_tui("export", "--plan", tmp_path / "full.json", "--out", tmp_path / "export", "--format", "onnx-qdq",
                       "--cache-directory", tmp_path / "cache")
    assert "onnx/index.json" in printed and "onnx/weights.bin" in printed
    assert (tmp_path / "export" / "quantized.safetensors").read_bytes() == (tmp_path / "full" / "quantized.safetensors").read_bytes()
    out = tmp_path / "export" / "onnx"
    index = json.loads((out / "index.json").read_text())
    assert len(index["steps"]) == STEPS and index["weights"] == "weights.bin"
    models = sorted({s["model"] for s in index["steps"]})
    assert len(models) == STEPS   # per-step activation scales: one model per step

    checkpoint = open_checkpoint(str(DEMO), modules="reference")
    holder = apply_export(checkpoint.model, str(tmp_path / "full"))
    d = checkpoint.sampler
    x, t, y, mask = example_inputs(checkpoint, [d.frames, d.height, d.width])
    extra = {"fps": torch.tensor([float(d.fps)]), "height": torch.tensor([float(d.height)]), "width": torch.tensor([float(d.width)])}
    static = sum(1 for m in holder_modules(checkpoint.model) if m.layer["act_scale"] is not None)
    weights = sum(1 for m in holder_modules(checkpoint.model) if m.layer["sets"][0]["codes"] is not None)
    for entry in index["steps"]:
        graph = onnx.load(str(out / entry["model"]), load_external_data=False)
        ops = [n.op_type for n in graph.graph.node]
        assert ops.count("QuantizeLinear") == static + weights, "a QDQ pair on every static activation and quantized weight"
        per_channel = [n for n in graph.graph.node if n.op_type == "QuantizeLinear" and any(a.name == "axis" for a in n.attribute)]
        assert len(per_channel) == weights
        session = ort.InferenceSession(str(out / entry["model"]), providers=["CPUExecutionProvider"])
        ours_onnx = torch.from_numpy(session.run(None, {"x": x.numpy(), "timestep": t.numpy(), "y": y.numpy(), "mask": mask.numpy()})[0])
        holder.step = entry["step"]
        with torch.no_grad():
            ours = checkpoint.model(x, t, y, mask=mask, **extra)
        holder.step = None
        peak = float(ours.max() - ours.min())
        psnr = float(10 * np.log10(peak ** 2 / float(((ours_onnx - ours) ** 2).mean())))
        print(f"ONNX Runtime vs PyTorch fake-quant, step {entry['step']}: PSNR {psnr:.1f} dB")
        assert psnr >= PSNR_FLOOR
    # The weight sets are stored once: two sets of the demo's block weights, not one per step model.
    block_bytes = sum(m.layer["sets"][0]["weight"].numel() * 4 for m in holder_modules(checkpoint.model))
    assert index["weights_bytes"] < 2 * block_bytes + 4 * 1024 * 1024


def holder_modules(model):
    from stsq_collect.fakequant import FakeQuantLinear
    return [m for m in model.modules() if isinstance(m, FakeQuantLinear)]
