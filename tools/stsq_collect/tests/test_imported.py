"""A checkpoint the engine cannot sample (no text encoder: captions from T5, as real OpenSora):
the collector calibrates it from precomputed caption embeddings, and `stsq-tui` works on the
imported statistics — stats, plan, quantize — while `calibrate` says why it cannot run."""
import json
import subprocess

import torch
from safetensors.torch import save_file

from stsq_collect.__main__ import main

from conftest import RANDOM_CONFIG


def test_engine_works_on_imported_statistics(stsq_tui, random_stdit3_t5, tmp_path):
    prompts = ["a cat on the moon", "a dog in the rain"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    L, C = 7, RANDOM_CONFIG["caption_channels"]
    torch.manual_seed(1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0]])
    save_file({"y": torch.randn(2, 1, L, C), "mask": mask}, str(tmp_path / "t5.safetensors"))
    cache = tmp_path / "cache"
    common = ["--calibration-prompts", tmp_path / "prompts.txt", "--cache-directory", cache]

    refused = subprocess.run([stsq_tui.path, "calibrate", random_stdit3_t5, "--prompts", tmp_path / "prompts.txt",
                              "--cache-directory", cache], capture_output=True, text=True)
    assert refused.returncode != 0 and "no text encoder" in refused.stderr and "stsq-collect" in refused.stderr, refused.stderr

    assert main([str(random_stdit3_t5), "--prompts", str(tmp_path / "prompts.txt"), "--captions", str(tmp_path / "t5.safetensors"),
                 "--cache-directory", str(cache), "--modules", "reference", "--threads", "1", "--quiet"]) == 0
    stats = json.loads(stsq_tui("stats", random_stdit3_t5, "--json", "--layer", "temporal_blocks.1.mlp.fc2", *common))
    (layer,) = stats["layers"]
    assert layer["name"] == "temporal_blocks.1.mlp.fc2" and len(layer["steps"]) == 3
    assert all(s["max"] > 0 and s["scale"] > 0 for s in layer["steps"]), "ranges and scales from the collector's statistics"
    stsq_tui("plan", random_stdit3_t5, "--out", tmp_path / "plan.json", "--alpha", "0.5", *common)
    out = stsq_tui("quantize", random_stdit3_t5, "--plan", tmp_path / "plan.json", "--out", tmp_path / "q",
                   "--cache-directory", cache)
    assert (tmp_path / "q" / "quantized.safetensors").stat().st_size > 0, out
    out = stsq_tui("export", random_stdit3_t5, "--plan", tmp_path / "plan.json", "--out", tmp_path / "aimet", "--format", "aimet",
                   "--cache-directory", cache)
    index = json.loads((tmp_path / "aimet" / "encodings" / "index.json").read_text())
    assert len(index["steps"]) == 3 and index["integer"] == "integer.safetensors", out
    first = json.loads((tmp_path / "aimet" / "encodings" / index["steps"][0]["encodings"]).read_text())
    assert first["version"] == "0.6.1"
    assert len(first["param_encodings"]["spatial_blocks.0.mlp.fc1.weight"]) == 4 * RANDOM_CONFIG["hidden_size"]
    assert first["activation_encodings"]["temporal_blocks.1.attn.qkv.input"][0]["bitwidth"] == 8
