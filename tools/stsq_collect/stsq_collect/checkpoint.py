"""Opening a checkpoint as `stsq-tui` does (`ModelLoader`, `ModelConfig.resolve`,
`CalibrationSetup`): the config from `<stem>.config.json`, `config.json` beside the file, or the
file's `config` metadata; weights as float32 whatever they are stored in; the checkpoint's own
`rope.freqs` when it has one; the demo model's word-level text encoder (`text_encoder.*`) when it
has one; the sampler defaults of its `sampler` metadata. The transformer is OpenSora's own STDiT3
when the `opensora` package is installed and asked for, else the project's reference modules.
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from safetensors import safe_open

AUXILIARY_PREFIXES = ("text_encoder.",)
# Buffers the engine recomputes (positional tables); a checkpoint may or may not store them.
RECOMPUTED_PREFIXES = ("pos_embed",)


class CheckpointError(Exception):
    pass


@dataclass
class SamplerDefaults:
    """The `sampler` metadata (`SamplerDefaults` in Swift)."""
    steps: int = None
    cfg_scale: float = None
    use_timestep_transform: bool = None
    timestep_shift: float = None
    frames: int = None
    height: int = None
    width: int = None
    fps: float = None

    @classmethod
    def from_json(cls, d):
        return cls(steps=d.get("num_sampling_steps"), cfg_scale=d.get("cfg_scale"),
                   use_timestep_transform=d.get("use_timestep_transform"), timestep_shift=d.get("timestep_shift"),
                   frames=d.get("frames"), height=d.get("height"), width=d.get("width"), fps=d.get("fps"))


class WordTextEncoder:
    """The demo model's text encoder (`WordTextEncoder.swift`): lower-case, trim, drop one trailing
    ".", split on whitespace; y[i] = token[id_i] + position[i]; mask 1 for the words and EOS."""

    PAD, EOS = 0, 1

    def __init__(self, vocabulary, token, position):
        self.vocabulary = vocabulary
        self.token = token.to(torch.float32)
        self.position = position.to(torch.float32)
        self.max_length = position.shape[0]
        self.ids = {w: i for i, w in enumerate(vocabulary)}

    def tokenize(self, prompt):
        text = prompt.lower().strip()
        if text.endswith("."):
            text = text[:-1]
        words = text.split()
        unknown = [w for w in words if w not in self.ids or w in ("<pad>", "</s>")]
        if unknown:
            raise CheckpointError(f"unknown words {unknown} in {prompt!r}; the demo model knows: "
                                  + " ".join(w for w in self.vocabulary if not w.startswith("<")))
        if len(words) + 1 > self.max_length:
            raise CheckpointError(f"{prompt!r} has {len(words)} words; the text encoder takes at most {self.max_length - 1}")
        tokens = [self.ids[w] for w in words] + [self.EOS]
        pad = self.max_length - len(tokens)
        return tokens + [self.PAD] * pad, [1] * len(tokens) + [0] * pad

    def encode(self, prompts):
        """(y [n, 1, L, C] float32, mask [n, L] int64)."""
        ys, masks = [], []
        for p in prompts:
            ids, mask = self.tokenize(p)
            # float32 sum per element, as the engine adds them
            ys.append(self.token[torch.tensor(ids)] + self.position)
            masks.append(mask)
        return torch.stack(ys)[:, None], torch.tensor(masks, dtype=torch.int64)


@dataclass
class Checkpoint:
    path: str
    config: dict
    model: torch.nn.Module
    modules: str                      # "reference" or "opensora"
    text_encoder: WordTextEncoder = None
    sampler: SamplerDefaults = field(default_factory=SamplerDefaults)

    @property
    def in_channels(self):
        return int(self.config["in_channels"])

    @property
    def null_caption(self):
        return self.model.y_embedder.y_embedding.detach().to(torch.float32)


def read_config(path, metadata):
    stem = path[: -len(".safetensors")] if path.endswith(".safetensors") else path
    for candidate in (stem + ".config.json", os.path.join(os.path.dirname(path) or ".", "config.json")):
        if os.path.exists(candidate):
            try:
                with open(candidate) as f:
                    return json.load(f)
            except (OSError, ValueError) as e:
                raise CheckpointError(f"{candidate}: {e} (the checkpoint's config)") from e
    if "config" in metadata:
        try:
            return json.loads(metadata["config"])
        except ValueError as e:
            raise CheckpointError(f"{path}: metadata 'config' is not valid JSON: {e}") from e
    raise CheckpointError(f"{path}: no config (metadata 'config', {os.path.basename(stem)}.config.json or config.json beside it)")


def _opensora_stdit3(cfg):
    """OpenSora v1.2's own STDiT3 (the `opensora` package), configured from a config.json dict."""
    from opensora.models.stdit.stdit3 import STDiT3, STDiT3Config   # noqa: WPS433 (optional dependency)
    keys = ("caption_channels", "depth", "hidden_size", "in_channels", "input_sq_size", "mlp_ratio",
            "model_max_length", "num_heads", "patch_size", "pred_sigma", "qk_norm")
    args = {k: cfg[k] for k in keys if k in cfg}
    args["patch_size"] = tuple(args.get("patch_size", (1, 2, 2)))
    return STDiT3(STDiT3Config(enable_flash_attn=False, enable_layernorm_kernel=False,
                               enable_sequence_parallelism=False, **args))


def open_checkpoint(path, modules="auto", device="cpu"):
    """Loads `path` for sampling. `modules`: "reference" (tools/stsq_collect/opensora_ref),
    "opensora" (the installed OpenSora package; an error if missing) or "auto" (OpenSora's when
    installed). Raises CheckpointError naming the file and the tensor on bad input."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        handle = safe_open(path, framework="pt")
    except Exception as e:   # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from e
    metadata = handle.metadata() or {}
    cfg = read_config(path, metadata)
    if cfg.get("model_type", "STDiT3") != "STDiT3":
        raise CheckpointError(f"{path}: model_type {cfg.get('model_type')!r}; the collector samples STDiT3 (v1.2) checkpoints")
    if modules == "auto":
        try:
            import opensora.models.stdit.stdit3  # noqa: F401
            modules = "opensora"
        except ImportError:
            modules = "reference"
    if modules == "opensora":
        model = _opensora_stdit3(cfg)
    elif modules == "reference":
        from opensora_ref import STDiT3
        model = STDiT3(cfg)
    else:
        raise CheckpointError(f"modules {modules!r}: use reference, opensora or auto")
    expected = model.state_dict()
    state = {}
    for name in handle.keys():
        if name.startswith(AUXILIARY_PREFIXES):
            continue
        if name not in expected:
            if name.startswith(RECOMPUTED_PREFIXES):
                continue
            raise CheckpointError(f"{path}: tensor '{name}' is not a parameter of STDiT3 {cfg.get('hidden_size')}×{cfg.get('depth')}")
        tensor = handle.get_tensor(name).to(torch.float32)
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{path}: tensor '{name}' has shape {list(tensor.shape)}, the config needs {list(expected[name].shape)}")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor '{name}' holds NaN or ±Inf")
        state[name] = tensor
    missing = [k for k in expected if k not in state and not k.startswith(RECOMPUTED_PREFIXES) and k != "rope.freqs"]
    if missing:
        raise CheckpointError(f"{path}: missing tensor '{missing[0]}'" + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    model.load_state_dict(state, strict=False)
    model.eval().to(device)
    encoder = None
    if "text_encoder.token_embedding.weight" in handle.keys():
        try:
            vocabulary = json.loads(metadata["vocabulary"])
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{path}: metadata 'vocabulary' must be a JSON list of words") from e
        encoder = WordTextEncoder(vocabulary, handle.get_tensor("text_encoder.token_embedding.weight"),
                                  handle.get_tensor("text_encoder.position_embedding.weight"))
    sampler = SamplerDefaults()
    if "sampler" in metadata:
        try:
            sampler = SamplerDefaults.from_json(json.loads(metadata["sampler"]))
        except ValueError:
            pass   # the engine ignores an unreadable sampler entry too
    return Checkpoint(path=path, config=cfg, model=model, modules=modules, text_encoder=encoder, sampler=sampler)


def load_captions(path, count):
    """Precomputed caption embeddings (e.g. OpenSora's T5 outputs): a safetensors file with `y`
    [n, 1, L, C] (or [n, L, C]) and `mask` [n, L], one row per prompt in the prompt file's order."""
    try:
        with safe_open(path, framework="pt") as f:
            names = set(f.keys())
            if "y" not in names or "mask" not in names:
                raise CheckpointError(f"{path}: needs tensors 'y' [n, 1, L, C] and 'mask' [n, L]; found {sorted(names)}")
            y = f.get_tensor("y").to(torch.float32)
            mask = f.get_tensor("mask").to(torch.int64)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from e
    if y.dim() == 3:
        y = y[:, None]
    if y.dim() != 4 or y.shape[1] != 1 or mask.shape != (y.shape[0], y.shape[2]):
        raise CheckpointError(f"{path}: 'y' {list(y.shape)} and 'mask' {list(mask.shape)} do not fit [n, 1, L, C] / [n, L]")
    if y.shape[0] != count:
        raise CheckpointError(f"{path}: {y.shape[0]} captions for {count} prompts")
    return y, mask


def schedule(steps, sampler, frames, pixel_height, pixel_width, pixel_space):
    """`RectifiedFlowSchedule.forSampling` in float32: (timesteps [S], dt [S]) as numpy float32."""
    f32 = np.float32
    ratio = None
    if sampler.use_timestep_transform is not False:
        if sampler.timestep_shift is not None:
            ratio = f32(sampler.timestep_shift)
            if not np.isfinite(ratio) or ratio <= 0:
                raise CheckpointError(f"the checkpoint's sampler 'timestep_shift' must be a positive number, found {sampler.timestep_shift}")
        else:
            video_frames = f32(frames if pixel_space or frames == 1 else (frames // 5) * 17)
            space = np.sqrt(f32(pixel_height) * f32(pixel_width) / f32(262_144))
            latent = f32(1) if video_frames == 1 else np.floor(video_frames / f32(17)) * f32(5)
            ratio = space * np.sqrt(latent)
            if not np.isfinite(ratio) or ratio <= 0:
                raise CheckpointError(f"the timestep transform is undefined for {frames} frames at {pixel_height}×{pixel_width}")
    ts = []
    for i in range(steps):
        t = f32((1.0 - i / steps) * 1000.0)
        if ratio is not None:
            u = t / f32(1000)
            t = ratio * u / (f32(1) + (ratio - f32(1)) * u) * f32(1000)
        ts.append(f32(t))
    dt = [(ts[i] - ts[i + 1] if i < steps - 1 else ts[i]) / f32(1000) for i in range(steps)]
    return np.array(ts, dtype=np.float32), np.array(dt, dtype=np.float32)
