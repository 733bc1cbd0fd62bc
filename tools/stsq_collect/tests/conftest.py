"""Shared fixtures: the repository, the engine's binary, a random-weight STDiT3 checkpoint."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "Sources/DemoModel/Resources/demo/model.safetensors"


@pytest.fixture(scope="session")
def stsq_tui():
    """The engine's binary: $STSQ_TUI, else the debug build `make test` has just made."""
    path = os.environ.get("STSQ_TUI") or str(REPO / ".build/debug/stsq-tui")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built: run `swift build` first (make test does), or set STSQ_TUI")

    def run(*args):
        done = subprocess.run([path, *map(str, args)], capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, f"stsq-tui {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout
    run.path = path
    return run


RANDOM_CONFIG = {"model_type": "STDiT3", "caption_channels": 24, "depth": 2, "hidden_size": 64, "in_channels": 4,
                 "input_sq_size": 64, "mlp_ratio": 4.0, "model_max_length": 10, "num_heads": 4, "patch_size": [1, 2, 2],
                 "pred_sigma": True, "qk_norm": True}
RANDOM_SAMPLER = {"num_sampling_steps": 3, "cfg_scale": 4.5, "use_timestep_transform": True, "frames": 5,
                  "height": 8, "width": 8, "fps": 24}
RANDOM_VOCABULARY = ["<pad>", "</s>", "a", "red", "cat", "jumps", "over", "the", "blue", "moon"]


def random_state():
    from opensora_ref import STDiT3
    torch.manual_seed(0)
    model = STDiT3(RANDOM_CONFIG)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # Default initialisation leaves the adaLN tables small; widen them so every path matters.
    for k in state:
        if k.endswith("scale_shift_table"):
            state[k] = torch.randn_like(state[k]) * 0.3
    return state


@pytest.fixture(scope="session")
def random_stdit3_t5(tmp_path_factory):
    """The same random STDiT3 as a real OpenSora checkpoint is: no text encoder of its own (its
    captions come from T5), so the engine cannot sample it."""
    path = tmp_path_factory.mktemp("random-t5") / "random-stdit3-t5.safetensors"
    save_file(random_state(), str(path), metadata={"config": json.dumps(RANDOM_CONFIG), "sampler": json.dumps(RANDOM_SAMPLER)})
    return path


@pytest.fixture(scope="session")
def random_stdit3(tmp_path_factory):
    """A random-weight latent-space STDiT3 (4 channels, pred_sigma, qk_norm, timestep transform on)
    with OpenSora's key names, stored in float32 with a word-level text encoder so the engine can
    calibrate it too."""
    state = random_state()
    state["text_encoder.token_embedding.weight"] = torch.randn(len(RANDOM_VOCABULARY), RANDOM_CONFIG["caption_channels"])
    state["text_encoder.position_embedding.weight"] = torch.randn(RANDOM_CONFIG["model_max_length"], RANDOM_CONFIG["caption_channels"]) * 0.1
    path = tmp_path_factory.mktemp("random") / "random-stdit3.safetensors"
    save_file(state, str(path), metadata={"config": json.dumps(RANDOM_CONFIG), "sampler": json.dumps(RANDOM_SAMPLER),
                                          "vocabulary": json.dumps(RANDOM_VOCABULARY), "format": "pt"})
    return path
