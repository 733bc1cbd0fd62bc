"""The quantized export as fake-quant on PyTorch (`stsq_collect.fakequant`) against the engine's
fake-quant of the same file (`stsq-tui forward --quantized DIR --step S --fake-quant`), one model
evaluation at a time on identical inputs.

Whole videos cannot be compared this way: the demo's quantized sampling is hypersensitive — a
1e-6 change in 0.1% of the initial noise moves the W8A8 fake-quant video by 29.5 dB PSNR (measured),
because a float-rounding difference flips an activation code and the flip is carried and amplified
by the sampler. One evaluation keeps the flips to those of a single pass."""
import json
import subprocess

import torch
from safetensors.torch import load_file, save_file

from stsq_collect.checkpoint import open_checkpoint, schedule
from stsq_collect.fakequant import apply_export
from stsq_collect.generators import NoiseGenerator
from stsq_collect.sample import main as sample_main

from conftest import DEMO

PROMPTS = ["a red circle moving left on a blue background", "a green square growing on a black background"]
STEPS = 4
# PSNR of the output (peak = the engine's output range) between the two implementations, per
# evaluation: float32 rounding differs (MKL vs oneDNN GEMMs, LayerNorm, softmax), so a few codes
# land on the other side of a rounding boundary. Measured 60.5–67.2 dB here (4 steps) and 58.8–66.8 dB
# at 10 steps, AVX-512.
PSNR_FLOOR = 55.0


def make_exports(stsq_tui, tmp_path):
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    common = ["--calibration-prompts", tmp_path / "p.txt", "--cache-directory", tmp_path / "cache", "--steps", STEPS]
    stsq_tui("calibrate", "--prompts", tmp_path / "p.txt", "--cache-directory", tmp_path / "cache", "--steps", STEPS)
    stsq_tui("plan", "--out", tmp_path / "default.json", *common)
    stsq_tui("plan", "--out", tmp_path / "full.json", "--alpha", "0.5", "--smoothing", "timestep", "--groups", "2", "--shift",
             "--activations", "uint8", *common)
    plan = json.loads((tmp_path / "full.json").read_text())
    plan["layers"] = {"spatial_blocks.0.mlp.fc2": {"alpha": 0.5}, "spatial_blocks.1.cross_attn.q_linear": {"alpha": 0.5},
                      "temporal_blocks.0.attn.proj": {"weight_bits": 4, "weight_symmetric": False},
                      "temporal_blocks.1.mlp.fc1": {"activations": "dynamic"},
                      "temporal_blocks.2.mlp.fc2": {"activations": "dynamic_uint8"},
                      "spatial_blocks.3.attn.qkv": {"keep_fp": True}}
    (tmp_path / "full.json").write_text(json.dumps(plan))
    for name in ("default", "full"):
        stsq_tui("quantize", "--plan", tmp_path / f"{name}.json", "--out", tmp_path / name, "--cache-directory", tmp_path / "cache")


def test_one_evaluation_agrees_with_the_engines_fake_quant(stsq_tui, tmp_path):
    torch.set_num_threads(1)
    make_exports(stsq_tui, tmp_path)
    for name in ("default", "full"):
        checkpoint = open_checkpoint(str(DEMO), modules="reference")
        holder = apply_export(checkpoint.model, str(tmp_path / name))
        y, mask = checkpoint.text_encoder.encode(PROMPTS)
        null = checkpoint.null_caption[: y.shape[2]]
        y = torch.cat([y, null[None, None].expand(2, 1, *null.shape)])
        d = checkpoint.sampler
        ts, _ = schedule(STEPS, d, d.frames, d.height, d.width, True)
        z = torch.from_numpy(NoiseGenerator(5).gaussian(2 * 3 * d.frames * d.height * d.width).reshape(2, 3, d.frames, d.height, d.width))
        x = torch.cat([z, z])
        extra = {"fps": torch.tensor([float(d.fps)]), "height": torch.tensor([float(d.height)]), "width": torch.tensor([float(d.width)])}
        for step in range(STEPS):
            t = torch.full((4,), float(ts[step]))
            save_file({"x": x, "timestep": t, "y": y, "mask": mask, **extra}, str(tmp_path / "in.safetensors"))
            stsq_tui("forward", DEMO, "--inputs", tmp_path / "in.safetensors", "--output", tmp_path / "out.safetensors",
                     "--quantized", tmp_path / name, "--step", step, "--fake-quant")
            engine = load_file(str(tmp_path / "out.safetensors"))["out"]
            holder.step = step
            with torch.no_grad():
                ours = checkpoint.model(x, t, y, mask=mask, **extra)
            holder.step = None
            peak = float(engine.max() - engine.min())
            psnr = float(10 * torch.log10(peak ** 2 / ((engine - ours) ** 2).mean()))
            print(f"{name} step {step}: PSNR {psnr:.1f} dB")
            assert psnr >= PSNR_FLOOR, f"{name} step {step}: PSNR {psnr:.1f} dB"
        # Steps outside a sampler step are refused, not silently run in float.
        try:
            checkpoint.model(x, t, y, mask=mask, **extra)
            raise AssertionError("ran without a step")
        except Exception as e:   # noqa: BLE001 (the module raises ExportError)
            assert "outside a sampler step" in str(e)


def test_sampling_the_export(stsq_tui, tmp_path):
    make_exports(stsq_tui, tmp_path)
    out = tmp_path / "videos.safetensors"
    assert sample_main([str(DEMO), "--quantized", str(tmp_path / "full"), "--prompts", str(tmp_path / "p.txt"),
                        "--out", str(out), "--modules", "reference", "--threads", "1"]) == 0
    videos = load_file(str(out))["samples"]
    assert videos.shape == (2, 3, 8, 32, 32) and torch.isfinite(videos).all()
    fp = tmp_path / "fp.safetensors"
    assert sample_main([str(DEMO), "--steps", str(STEPS), "--prompts", str(tmp_path / "p.txt"), "--out", str(fp),
                        "--modules", "reference", "--threads", "1"]) == 0
    # The engine's FP video from the same noise: the two samplers agree where nothing is quantized.
    stsq_tui("sample", "--prompt", PROMPTS[0], "--prompt", PROMPTS[1], "--steps", STEPS, "--out", tmp_path / "engine_fp.safetensors")
    engine = load_file(str(tmp_path / "engine_fp.safetensors"))["samples"]
    ours = load_file(str(fp))["samples"]
    psnr = float(10 * torch.log10(4.0 / ((engine - ours) ** 2).mean()))
    print(f"FP videos, collector vs engine: PSNR {psnr:.1f} dB (peak 2)")
    assert psnr >= 90
    assert float(((videos - ours) ** 2).mean()) > 0, "the export changed the videos"
    # The engine samples the same export; with another fps its modulation tables would not fit.
    stsq_tui("sample", "--prompt", PROMPTS[0], "--steps", STEPS, "--quantized", tmp_path / "full", "--fake-quant",
             "--out", tmp_path / "engine_q.safetensors")
    engine_q = load_file(str(tmp_path / "engine_q.safetensors"))["samples"]
    assert engine_q.shape == (1, 3, 8, 32, 32) and torch.isfinite(engine_q).all()
    refused = subprocess.run([stsq_tui.path, "sample", DEMO, "--prompt", PROMPTS[0], "--steps", str(STEPS), "--fps", "12",
                              "--quantized", tmp_path / "full", "--out", tmp_path / "x.safetensors"], capture_output=True, text=True)
    assert refused.returncode != 0 and "fps" in refused.stderr, refused.stderr
    assert sample_main([str(DEMO), "--quantized", str(tmp_path / "full"), "--prompts", str(tmp_path / "p.txt"), "--steps", "3",
                        "--out", str(tmp_path / "y.safetensors"), "--modules", "reference"]) == 1
