#!/usr/bin/env python3
"""Train the bundled demo model of stsq-tui: a small OpenSora v1.2 STDiT3 in pixel space on the
scene world of tools/scenes.py (issue 6).

PyTorch only (torch, numpy, safetensors); installs nothing. CPU by default (fixed seeds,
deterministic data); `--device cuda` runs the same code on a GPU.

The model class below is OpenSora v1.2's STDiT3 written from /work/shared/OPENSORA.md §2.2, §4,
§6: same module structure and state-dict names, so the Swift loader/forward serve it unchanged.
The text encoder (word-level tokenizer over the grammar's vocabulary, learned token and position
embedding) lives in the same checkpoint under the `text_encoder.` prefix.

Training: rectified flow as OpenSora v1.2 (opensora/schedulers/rf): x_t = (1 - t/1000) x0 +
(t/1000) eps, t = 1000 * sigmoid(N(0,1)) (logit-normal), the model is fed the raw t in (0, 1000)
and predicts v = x0 - eps (MSE). No timestep transform (OPENSORA.md §9.2's transform is
undefined for 2..16 frames). Caption dropout: the caption is replaced by the null embedding
`y_embedder.y_embedding` (mask kept) with probability --caption-dropout, so CFG works.

Sampling (see `sample`): z ~ N(0, I) [n, 3, 8, 32, 32]; for i = 0..N-1: t_i = (1 - i/N) * 1000,
v = v_u + s (v_c - v_u) from one batch [cond; uncond] (uncond y = y_embedding, cond mask tiled);
z <- z + v / N. The result is the video in [-1, 1] (no VAE).

Outputs (in --out): model.safetensors (EMA weights + text encoder, config/vocabulary in the
metadata), config.json, loss.log, quality.log; training state (resumable) in --state.

Examples:
    python tools/train_demo.py --out /work/demo-train/export --state /work/demo-train/state.pt \
        --stop-at 01:45 --eval-every-min 12
    python tools/train_demo.py --sample-only /work/demo-train/export/model.safetensors
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
import judge as judge_mod  # noqa: E402

DEFAULT_CONFIG = {
    "model_type": "STDiT3",
    "caption_channels": 32,
    "depth": 4,
    "hidden_size": 128,
    "in_channels": 3,
    "input_sq_size": 32,
    "mlp_ratio": 4.0,
    "model_max_length": 12,
    "num_heads": 2,
    "patch_size": [1, 4, 4],
    "pred_sigma": False,
    "qk_norm": True,
}
FPS = 24


# ----------------------------------------------------------------------------------------------
# STDiT3 (OPENSORA.md §2.2, §4, §6)
# ----------------------------------------------------------------------------------------------

def t2i_modulate(x, shift, scale):
    return x * (1 + scale) + shift


class RMSNorm(nn.Module):
    """LlamaRMSNorm, eps 1e-6: fp32 statistics, cast back, times weight."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


class RotaryEmbedding(nn.Module):
    """rotary-embedding-torch 0.5.3, freqs_for='lang', theta 10000, interleaved pairs (§4.6)."""

    def __init__(self, dim, theta=10000.0):
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def rotate_queries_or_keys(self, t):
        # t: [..., n, D]; positions along dim -2
        n = t.shape[-2]
        pos = torch.arange(n, device=t.device, dtype=self.freqs.dtype)
        ang = pos[:, None] * self.freqs[None, :]               # [n, D/2]
        ang = ang.repeat_interleave(2, dim=-1)                 # [θ0, θ0, θ1, θ1, ...]
        cos, sin = ang.cos().to(t.dtype), ang.sin().to(t.dtype)
        x = t.unflatten(-1, (-1, 2))
        x1, x2 = x.unbind(-1)
        rot = torch.stack((-x2, x1), dim=-1).flatten(-2)       # rotate_half, interleaved
        return t * cos + rot * sin


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qk_norm=True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rope=None):
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                                 # [B, H, N, D]
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q = rope.rotate_queries_or_keys(q)
            k = rope.rotate_queries_or_keys(k)
        o = F.scaled_dot_product_attention(q, k, v)
        o = o.transpose(1, 2).reshape(B, N, C)
        return self.proj(o)


class MultiHeadCrossAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, y, key_mask):
        # x [B, N, C]; y [B, L, C]; key_mask [B, L] bool. Equivalent to OpenSora's packed
        # block-diagonal attention over each sample's valid tokens (§4.7).
        B, N, C = x.shape
        L = y.shape[1]
        q = self.q_linear(x).view(B, N, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv_linear(y).view(B, L, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        k, v = kv.unbind(0)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])
        o = o.transpose(1, 2).reshape(B, N, C)
        return self.proj(o)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, out_features=None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class STDiT3Block(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio=4.0, qk_norm=True, temporal=False):
        super().__init__()
        self.temporal = temporal
        self.norm1 = nn.LayerNorm(hidden_size, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(hidden_size, num_heads, qk_norm=qk_norm)
        self.cross_attn = MultiHeadCrossAttention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size ** 0.5)

    def forward(self, x, y, key_mask, t6, T, S, rope=None):
        B, N, C = x.shape
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + t6.reshape(B, 6, C)).chunk(6, dim=1)
        x_m = t2i_modulate(self.norm1(x), shift_msa, scale_msa)
        if self.temporal:
            x_m = x_m.view(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)
            x_m = self.attn(x_m, rope=rope)
            x_m = x_m.view(B, S, T, C).transpose(1, 2).reshape(B, N, C)
        else:
            x_m = self.attn(x_m.reshape(B * T, S, C)).view(B, N, C)
        x = x + gate_msa * x_m
        x = x + self.cross_attn(x, y, key_mask)
        x_m = t2i_modulate(self.norm2(x), shift_mlp, scale_mlp)
        x = x + gate_mlp * self.mlp(x_m)
        return x


class TimestepEmbedder(nn.Module):
    """Sinusoid (cos first, F = 256, max_period 10000) -> Linear -> SiLU -> Linear (§4.2)."""

    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, bias=True),
                                 nn.SiLU(), nn.Linear(hidden_size, hidden_size, bias=True))
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float32,
                                                               device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t, dtype):
        f = self.timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(f.to(dtype))


class CaptionEmbedder(nn.Module):
    def __init__(self, in_channels, hidden_size, token_num):
        super().__init__()
        self.y_proj = Mlp(in_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(token_num, in_channels) / in_channels ** 0.5)

    def forward(self, y):
        return self.y_proj(y)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x):
        pt, ph, pw = self.patch_size
        _, _, T, H, W = x.shape
        x = F.pad(x, (0, (-W) % pw, 0, (-H) % ph, 0, (-T) % pt))
        x = self.proj(x)                                       # [B, C, Tn, Hn, Wn]
        return x.flatten(2).transpose(1, 2)                    # [B, N, C]


class PositionEmbedding2D(nn.Module):
    """OpenSora v1.2 PositionEmbedding2D (§4.11): [sincos(col), sincos(row)], sin first."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        half_dim = dim // 2
        inv_freq = 1.0 / (10000 ** (torch.arange(0, half_dim, 2).float() / half_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def _sincos(self, pos):
        out = pos[:, None] * self.inv_freq[None, :]
        return torch.cat([out.sin(), out.cos()], dim=-1)

    def forward(self, dtype, h, w, scale=1.0, base_size=None):
        dev = self.inv_freq.device
        grid_h = torch.arange(h, device=dev, dtype=torch.float32) / scale
        grid_w = torch.arange(w, device=dev, dtype=torch.float32) / scale
        if base_size is not None:
            grid_h = grid_h * (base_size / h)
            grid_w = grid_w * (base_size / w)
        row = grid_h[:, None].expand(h, w).reshape(-1)
        col = grid_w[None, :].expand(h, w).reshape(-1)
        emb = torch.cat([self._sincos(col), self._sincos(row)], dim=-1)   # [h*w, dim]
        return emb[None].to(dtype)


class T2IFinalLayer(nn.Module):
    def __init__(self, hidden_size, num_patch, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(hidden_size, num_patch * out_channels, bias=True)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size ** 0.5)

    def forward(self, x, t_emb):
        shift, scale = (self.scale_shift_table[None] + t_emb[:, None]).chunk(2, dim=1)
        return self.linear(t2i_modulate(self.norm_final(x), shift, scale))


class STDiT3(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        C = cfg["hidden_size"]
        self.hidden_size = C
        self.num_heads = cfg["num_heads"]
        self.in_channels = cfg["in_channels"]
        self.out_channels = self.in_channels * (2 if cfg["pred_sigma"] else 1)
        self.patch_size = tuple(cfg["patch_size"])
        self.input_sq_size = cfg["input_sq_size"]
        depth = cfg["depth"]
        qk_norm = cfg["qk_norm"]
        mlp_ratio = cfg["mlp_ratio"]
        self.pos_embed = PositionEmbedding2D(C)
        self.rope = RotaryEmbedding(dim=C // self.num_heads)
        self.x_embedder = PatchEmbed3D(self.patch_size, self.in_channels, C)
        self.t_embedder = TimestepEmbedder(C)
        self.fps_embedder = TimestepEmbedder(C)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C, bias=True))
        self.y_embedder = CaptionEmbedder(cfg["caption_channels"], C, cfg["model_max_length"])
        self.spatial_blocks = nn.ModuleList(
            [STDiT3Block(C, self.num_heads, mlp_ratio, qk_norm, temporal=False) for _ in range(depth)])
        self.temporal_blocks = nn.ModuleList(
            [STDiT3Block(C, self.num_heads, mlp_ratio, qk_norm, temporal=True) for _ in range(depth)])
        self.final_layer = T2IFinalLayer(C, int(np.prod(self.patch_size)), self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        def _basic_init(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        self.apply(_basic_init)
        w = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.constant_(self.x_embedder.proj.bias, 0)
        for emb in (self.t_embedder, self.fps_embedder):
            nn.init.normal_(emb.mlp[0].weight, std=0.02)
            nn.init.normal_(emb.mlp[2].weight, std=0.02)
        nn.init.constant_(self.fps_embedder.mlp[2].weight, 0)
        nn.init.constant_(self.fps_embedder.mlp[2].bias, 0)
        nn.init.normal_(self.t_block[1].weight, std=0.02)
        nn.init.normal_(self.y_embedder.y_proj.fc1.weight, std=0.02)
        nn.init.normal_(self.y_embedder.y_proj.fc2.weight, std=0.02)
        for b in self.temporal_blocks:
            nn.init.constant_(b.attn.proj.weight, 0)
            nn.init.constant_(b.cross_attn.proj.weight, 0)
            nn.init.constant_(b.mlp.fc2.weight, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def forward(self, x, timestep, y, mask=None, fps=None, height=None, width=None):
        """x [B, Cin, T, H, W]; timestep [B] (raw, 0..1000); y [B, 1, L, Cc]; mask [n, L];
        fps, height, width [n] (height/width in pixels = input size for this pixel model)."""
        dtype = self.x_embedder.proj.weight.dtype
        B = x.shape[0]
        x = x.to(dtype)
        y = y.to(dtype)
        _, _, T, H, W = x.shape
        pt, ph, pw = self.patch_size
        Tn, Hn, Wn = -(-T // pt), -(-H // ph), -(-W // pw)
        S = Hn * Wn
        base_size = round(S ** 0.5)
        hh = float(height[0]) if height is not None else float(H)
        ww = float(width[0]) if width is not None else float(W)
        resolution_sq = (hh * ww) ** 0.5
        scale = resolution_sq / self.input_sq_size
        pos_emb = self.pos_embed(dtype, Hn, Wn, scale=scale, base_size=base_size)

        t_emb = self.t_embedder(timestep, dtype)
        if fps is None:
            fps = torch.full((B,), float(FPS), device=x.device)
        fps = fps.to(x.device)
        if fps.shape[0] != B:
            fps = fps.repeat(B // fps.shape[0])
        t_emb = t_emb + self.fps_embedder(fps, dtype)
        t6 = self.t_block(t_emb)

        y = self.y_embedder(y).squeeze(1)                       # [B, L, C]
        if mask is None:
            key_mask = torch.ones(y.shape[:2], dtype=torch.bool, device=x.device)
        else:
            mask = mask.to(x.device)
            if mask.shape[0] != B:
                mask = mask.repeat(B // mask.shape[0], 1)
            key_mask = mask != 0

        h = self.x_embedder(x)                                  # [B, N, C]
        h = (h.view(B, Tn, S, -1) + pos_emb[:, None]).view(B, Tn * S, -1)
        for sb, tb in zip(self.spatial_blocks, self.temporal_blocks):
            h = sb(h, y, key_mask, t6, Tn, S)
            h = tb(h, y, key_mask, t6, Tn, S, rope=self.rope)
        h = self.final_layer(h, t_emb)                          # [B, N, P*Cout]
        out = self.unpatchify(h, Tn, Hn, Wn)[:, :, :T, :H, :W]
        return out.float()

    def unpatchify(self, h, Tn, Hn, Wn):
        pt, ph, pw = self.patch_size
        B = h.shape[0]
        c = self.out_channels
        h = h.view(B, Tn, Hn, Wn, pt, ph, pw, c)
        h = h.permute(0, 7, 1, 4, 2, 5, 3, 6)                   # B c Tn pt Hn ph Wn pw
        return h.reshape(B, c, Tn * pt, Hn * ph, Wn * pw)


# ----------------------------------------------------------------------------------------------
# Text encoder: word-level tokenizer + learned token/position embedding (prefix text_encoder.)
# ----------------------------------------------------------------------------------------------

PAD, EOS = "<pad>", "</s>"


def default_vocabulary():
    return [PAD, EOS] + scenes.vocabulary()


class WordTokenizer:
    """Lower-case, drop one trailing '.', split on whitespace; every word must be in the
    vocabulary. ids = word ids + [EOS id], padded with PAD id (0) to model_max_length;
    mask = 1 for the words and the EOS, 0 for padding. Longer prompts are an error."""

    def __init__(self, vocab, max_length):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length

    def words(self, prompt):
        p = prompt.strip().lower()
        if p.endswith("."):
            p = p[:-1]
        return p.split()

    def encode(self, prompt):
        ws = self.words(prompt)
        unknown = [w for w in ws if w not in self.index or w in (PAD, EOS)]
        if unknown:
            known = [w for w in self.vocab if w not in (PAD, EOS)]
            raise ValueError(f"unknown word(s) {unknown} in prompt {prompt!r}; "
                             f"known vocabulary: {' '.join(known)}")
        ids = [self.index[w] for w in ws] + [self.index[EOS]]
        if len(ids) > self.max_length:
            raise ValueError(f"prompt {prompt!r} has {len(ws)} words; at most "
                             f"{self.max_length - 1} fit (model_max_length {self.max_length} incl. EOS)")
        mask = [1] * len(ids) + [0] * (self.max_length - len(ids))
        ids = ids + [self.index[PAD]] * (self.max_length - len(ids))
        return ids, mask


class TextEncoder(nn.Module):
    """y[i] = token_embedding[ids[i]] + position_embedding[i], i = 0..L-1 (padding rows too:
    they are masked out by the model)."""

    def __init__(self, vocab_size, max_length, channels):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, channels)
        self.position_embedding = nn.Embedding(max_length, channels)
        nn.init.normal_(self.token_embedding.weight, std=channels ** -0.5)
        nn.init.normal_(self.position_embedding.weight, std=channels ** -0.5)

    def forward(self, ids):                                     # ids [n, L] -> [n, 1, L, Cc]
        pos = torch.arange(ids.shape[1], device=ids.device)
        return (self.token_embedding(ids) + self.position_embedding(pos)[None])[:, None]


class DemoModel(nn.Module):
    def __init__(self, cfg, vocab):
        super().__init__()
        self.cfg = cfg
        self.vocab = list(vocab)
        self.tokenizer = WordTokenizer(vocab, cfg["model_max_length"])
        self.stdit = STDiT3(cfg)
        self.text_encoder = TextEncoder(len(vocab), cfg["model_max_length"], cfg["caption_channels"])

    def encode(self, prompts, device):
        enc = [self.tokenizer.encode(p) for p in prompts]
        ids = torch.tensor([e[0] for e in enc], device=device)
        mask = torch.tensor([e[1] for e in enc], device=device)
        return self.text_encoder(ids), mask

    def flat_state_dict(self):
        sd = {k: v for k, v in self.stdit.state_dict().items()}
        for k, v in self.text_encoder.state_dict().items():
            sd["text_encoder." + k] = v
        return sd

    def load_flat_state_dict(self, sd):
        st = {k: v for k, v in sd.items() if not k.startswith("text_encoder.")}
        te = {k[len("text_encoder."):]: v for k, v in sd.items() if k.startswith("text_encoder.")}
        self.stdit.load_state_dict({k: v.float() for k, v in st.items()})
        self.text_encoder.load_state_dict({k: v.float() for k, v in te.items()})


# ----------------------------------------------------------------------------------------------
# Checkpoint I/O
# ----------------------------------------------------------------------------------------------

def tokenizer_meta():
    return {"type": "word", "lowercase": True, "strip_trailing_period": True, "split": "whitespace",
            "append_eos": True, "pad_id": 0, "eos_id": 1, "pad_to": "model_max_length",
            "mask": "1 for words and EOS, 0 for padding",
            "embedding": "y[i] = text_encoder.token_embedding.weight[id_i] + "
                         "text_encoder.position_embedding.weight[i]",
            "unknown_words": "error"}


def sampler_meta(steps, cfg_scale, shift=1.0):
    return {"scheduler": "rflow", "num_sampling_steps": steps, "cfg_scale": cfg_scale,
            "num_timesteps": 1000, "use_timestep_transform": shift != 1.0, "timestep_shift": shift,
            "timestep_transform": "u' = r*u/(1+(r-1)*u) with r = timestep_shift, u = t/1000",
            "prediction": "x0 - eps",
            "frames": scenes.FRAMES, "height": scenes.HEIGHT, "width": scenes.WIDTH, "fps": FPS,
            "value_range": [-1, 1], "vae": None}


def export(model: DemoModel, out_dir, steps_done, sampler=(30, 5.0, 1.0), dtype=None, weights="EMA"):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.flat_state_dict().items()}
    nbytes = sum(v.numel() * 4 for v in sd.values())
    if dtype is None:
        dtype = torch.float32 if nbytes <= 15.5e6 else torch.float16
    sd = {k: v.to(dtype) for k, v in sd.items()}
    meta = {"format": "pt", "config": json.dumps(model.cfg), "vocabulary": json.dumps(model.vocab),
            "tokenizer": json.dumps(tokenizer_meta()),
            "sampler": json.dumps(sampler_meta(*sampler)),
            "training_steps": str(steps_done), "description": f"stsq-tui demo STDiT3 ({weights} weights)"}
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    save_file(sd, tmp, metadata=meta)
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "config.json.tmp"), "w") as f:
        json.dump(model.cfg, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(out_dir, "config.json.tmp"), os.path.join(out_dir, "config.json"))


def load_checkpoint(path, device="cpu") -> DemoModel:
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    vocab = json.loads(meta["vocabulary"])
    model = DemoModel(cfg, vocab)
    model.load_flat_state_dict(load_file(path))
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------
# Sampling (RF, OPENSORA.md §9.2 without the timestep transform; CFG §8)
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def sample(model: DemoModel, prompts, seeds, steps=30, cfg_scale=5.0, device="cpu", batch=32, shift=1.0):
    """Returns float32 numpy [n, 3, T, H, W] in (about) [-1, 1]."""
    outs = []
    st = model.stdit
    for i in range(0, len(prompts), batch):
        ps, ss = prompts[i:i + batch], seeds[i:i + batch]
        n = len(ps)
        z = torch.stack([torch.randn(st.in_channels, scenes.FRAMES, scenes.HEIGHT, scenes.WIDTH,
                                     generator=torch.Generator().manual_seed(int(s))) for s in ss]).to(device)
        y, mask = model.encode(ps, device)
        y_null = st.y_embedder.y_embedding[None, None].expand(n, 1, -1, -1)
        y_all = torch.cat([y, y_null], 0)
        fps = torch.full((n,), float(FPS), device=device)
        hw = torch.full((n,), float(scenes.HEIGHT), device=device)
        ww = torch.full((n,), float(scenes.WIDTH), device=device)
        ts = [shift_time((1.0 - k / steps), shift) * 1000.0 for k in range(steps)] + [0.0]
        for k in range(steps):
            t = ts[k]
            dt_ = (ts[k] - ts[k + 1]) / 1000.0
            tt = torch.full((2 * n,), t, device=device)
            v = st(torch.cat([z, z], 0), tt, y_all, mask, fps, hw, ww)
            v_c, v_u = v[:n], v[n:]
            vg = v_u + cfg_scale * (v_c - v_u)
            z = z + vg * dt_
        outs.append(z.float().cpu().numpy())
    return np.concatenate(outs, 0)


def read_prompts(path):
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.strip().startswith("#")]


def evaluate(model, prompts, seeds=(0,), steps=30, cfg_scale=5.0, device="cpu", shift=1.0):
    ps = [p for s in seeds for p in prompts]
    ss = [1000 * s + i for s in seeds for i in range(len(prompts))]
    vids = sample(model, ps, ss, steps, cfg_scale, device, shift=shift)
    scores = [judge_mod.score(scenes.from_model(v), p) for v, p in zip(vids, ps)]
    return judge_mod.summarize(scores), vids


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def get_batch(step, bs, seed, device, render_device):
    params = [scenes.scene_params(seed * 1_000_003 + step * bs + i, allow_held_out=False)
              for i in range(bs)]
    vid = scenes.render_batch(params, render_device if render_device.type != "cpu" else None)
    if not torch.is_tensor(vid):
        vid = torch.from_numpy(vid)
    vid = vid.to(device)
    x0 = scenes.to_model(vid).contiguous()                     # [B, 3, T, H, W]
    bg = torch.tensor([scenes.BACKGROUNDS[p["background"]] for p in params], device=device)
    fg = ((vid - bg[:, None, None, None]).abs().sum(-1) > 1e-3).float()  # [B, T, H, W]
    return x0, fg[:, None], [p["prompt"] for p in params]


REVERSED_MOTION = {"left": "right", "right": "left", "up": "down", "down": "up"}


def reverse_pairs(x0, fg, prompts):
    """The second half of a batch replaced by the first half played backwards, with the motion
    word swapped ("left" <-> "right", "up" <-> "down"). A translation played backwards is a
    translation the other way with the same start-position distribution, so the data stay the
    scene world's. With the same noise (also reversed) and t for both halves, the two halves of a
    pair differ only in frame order and in the motion word, which is the interaction the model
    must learn to follow a prompt's direction. Growing scenes (their reverse is not in the world)
    and scenes whose reverse is a held-out combination are kept as they are."""
    h = x0.shape[0] // 2
    x0, fg, prompts = x0.clone(), fg.clone(), list(prompts)
    for i in range(h):
        at = scenes.parse_prompt(prompts[i])
        other = (at["colour"], at["shape"], REVERSED_MOTION.get(at["motion"]), at["background"])
        if at["motion"] in REVERSED_MOTION and other not in scenes.HELD_OUT:
            x0[h + i] = x0[i].flip(1)
            fg[h + i] = fg[i].flip(1)
            prompts[h + i] = scenes.prompt_of(at["colour"], at["shape"], REVERSED_MOTION[at["motion"]],
                                              at["background"])
        else:
            x0[h + i], fg[h + i], prompts[h + i] = x0[i], fg[i], prompts[i]
    return x0, fg, prompts


def inflate_temporal_patch(sd, old_cfg, new_cfg, seed=0, diff_scale=0.5):
    """A DemoModel state dict of temporal patch 1 turned into one of temporal patch k (the same
    spatial patch and every other hyper-parameter equal), as I3D inflates image models: the patch
    embedding's kernel is spread evenly over the k frames (a token embeds their mean), plus a
    random part that sums to zero over the frames (scaled by diff_scale against the kernel's
    spread); the final layer's rows are repeated for each of the k frames it now predicts. With
    diff_scale 0 the inflated model computes what the old one computes on the k-frame means,
    repeated over the k frames."""
    po, pn = list(old_cfg["patch_size"]), list(new_cfg["patch_size"])
    rest_o = {k: v for k, v in old_cfg.items() if k != "patch_size"}
    rest_n = {k: v for k, v in new_cfg.items() if k != "patch_size"}
    if po[0] != 1 or po[1:] != pn[1:] or rest_o != rest_n:
        raise SystemExit(f"cannot inflate {old_cfg} into {new_cfg}: only the temporal patch may change, from 1")
    k = pn[0]
    out = dict(sd)
    w = sd["stdit.x_embedder.proj.weight"]                       # [C, Cin, 1, ph, pw]
    # Symmetric weights alone are a saddle: no token would ever tell its k frames apart, and the
    # gradient that could teach it is zero. A random zero-mean-over-frames part breaks the tie:
    # it embeds the frame differences (noise included), and the final layer learns to use them.
    g = torch.Generator().manual_seed(seed)
    diff = torch.randn(w.shape[0], w.shape[1], k, *w.shape[3:], generator=g)
    diff = (diff - diff.mean(2, keepdim=True)) * (w.std() * diff_scale)
    out["stdit.x_embedder.proj.weight"] = ((w / k).repeat(1, 1, k, 1, 1) + diff).contiguous()
    for name in ("stdit.final_layer.linear.weight", "stdit.final_layer.linear.bias"):
        v = sd[name]                                             # rows (ph, pw, c) -> (pt, ph, pw, c)
        out[name] = v.repeat(k, *([1] * (v.dim() - 1))).contiguous()
    return out


def shift_time(u, r):
    """OpenSora's timestep_transform with an explicit factor r (§9.2 step 2): u' = r u / (1 + (r-1) u).
    r > 1 moves steps towards pure noise; r = 1 is the identity."""
    if r == 1:
        return u
    return r * u / (1 + (r - 1) * u)


def lr_at(step, a, start_step=0, minutes=0.0):
    """Learning rate at `step`; `minutes` is the time trained since this run started."""
    lr = a.lr
    if step < a.warmup:
        lr = a.lr * (step + 1) / a.warmup
    if a.rewarm and step - start_step < a.rewarm:     # re-warm after a resume
        lr = min(lr, a.lr * (step - start_step + 1) / a.rewarm)
    if a.anneal_minutes and a.max_minutes:
        # Linear decay to anneal_floor * lr over the last anneal_minutes of a --max-minutes run
        # (time-based because the step rate is not known in advance on a new machine).
        left = a.max_minutes - minutes
        frac = min(1.0, max(0.0, left / a.anneal_minutes))
        lr *= a.anneal_floor + (1 - a.anneal_floor) * frac
    return lr


def now_utc():
    return dt.datetime.now(dt.timezone.utc)


def parse_stop_at(s):
    if not s:
        return None
    n = now_utc()
    hh, mm = map(int, s.split(":"))
    t = n.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if t < n - dt.timedelta(hours=12):
        t += dt.timedelta(days=1)
    return t


def log(path, line):
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def save_state(path, model, ema, opt, step, extra):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "step": step, "torch_rng": torch.get_rng_state(), "np_rng": np.random.get_state(),
                "py_rng": random.getstate(), "cfg": model.cfg, "vocab": model.vocab, **extra}, tmp)
    os.replace(tmp, path)


def train(a):
    if a.reverse_pairs and a.batch % 2:
        raise SystemExit(f"--reverse-pairs pairs up each batch: --batch must be even, got {a.batch}")
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    device = torch.device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(hidden_size=a.hidden, depth=a.depth, num_heads=a.heads, caption_channels=a.caption_channels,
               patch_size=[int(v) for v in a.patch.split(",")])
    vocab = default_vocabulary()
    step = 0
    state = None
    if a.state and os.path.exists(a.state):
        state = torch.load(a.state, map_location="cpu", weights_only=False)
        cfg, vocab = state["cfg"], state["vocab"]
    model = DemoModel(cfg, vocab).to(device)
    ema = DemoModel(cfg, vocab).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.99), weight_decay=0.0, eps=1e-8)
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        if "opt" in state and state["opt"] is not None and not a.reset_optimizer:
            opt.load_state_dict(state["opt"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["np_rng"])
        random.setstate(state["py_rng"])
        print(f"resumed from {a.state} at step {step}", flush=True)
    elif a.init_from:
        st = torch.load(a.init_from, map_location="cpu", weights_only=False)
        if list(st["cfg"]["patch_size"]) != list(cfg["patch_size"]):
            # The EMA weights, inflated in time; model and EMA both start from them.
            sd = inflate_temporal_patch(st["ema"], st["cfg"], cfg)
            model.load_state_dict(sd)
            ema.load_state_dict(sd)
            print(f"inflated {st['cfg']['patch_size']} -> {cfg['patch_size']}", flush=True)
        else:
            model.load_state_dict(st["model"])
            ema.load_state_dict(st["ema"])
        step = st.get("step", 0)
        print(f"initialised from {a.init_from} (step {step})", flush=True)
    nparam = sum(p.numel() for p in model.stdit.parameters())
    print(f"config {json.dumps(cfg)}; STDiT3 params {nparam}; device {device}", flush=True)

    os.makedirs(a.out, exist_ok=True)
    loss_log = os.path.join(a.out, "loss.log")
    qual_log = os.path.join(a.out, "quality.log")
    eval_prompts = read_prompts(a.eval_prompts)
    if a.eval_subset:
        eval_prompts = eval_prompts[:a.eval_subset]
    stop_at = parse_stop_at(a.stop_at)
    t_start = time.time()
    last_eval = time.time()
    gen = torch.Generator(device=device).manual_seed(a.seed * 7919 + step)
    autocast = a.bf16
    acc_loss, acc_n, t_log = 0.0, 0, time.time()
    model.train()
    start_step = step
    while True:
        if a.max_steps and step >= a.max_steps:
            reason = "max steps"
            break
        if stop_at is not None and now_utc() >= stop_at:
            reason = "stop time"
            break
        if a.max_minutes and (time.time() - t_start) / 60 >= a.max_minutes:
            reason = "max minutes"
            break
        x0, fg, prompts = get_batch(step, a.batch, a.seed, device, device)
        B = x0.shape[0]
        if a.reverse_pairs:
            x0, fg, prompts = reverse_pairs(x0, fg, prompts)
        y, mask = model.encode(prompts, device)
        drop = torch.rand(B, device=device, generator=gen) < a.caption_dropout
        h = B // 2
        if a.reverse_pairs:                 # both halves of a pair share dropout, t and noise
            drop = torch.cat([drop[:h], drop[:h]])
        y_null = model.stdit.y_embedder.y_embedding[None, None].expand_as(y)
        y = torch.where(drop[:, None, None, None], y_null, y)
        u = torch.sigmoid(torch.randn(B, device=device, generator=gen))   # logit-normal
        u = shift_time(u, a.t_shift)                                        # more high-noise steps
        if a.high_noise_frac > 0:
            # Which way an object moves is decided at the highest noise levels, where only the
            # prompt can tell (the frames carry no signal yet); logit-normal draws almost never
            # land there.
            hi = torch.rand(B, device=device, generator=gen) < a.high_noise_frac
            u_hi = 0.9 + 0.1 * torch.rand(B, device=device, generator=gen)
            u = torch.where(hi, u_hi, u)
        eps = torch.randn(x0.shape, device=device, generator=gen)
        if a.reverse_pairs:
            u = torch.cat([u[:h], u[:h]])
            eps = torch.cat([eps[:h], eps[:h].flip(2)])
        t = u * 1000.0
        ub = u[:, None, None, None, None]
        x_t = (1 - ub) * x0 + ub * eps
        target = x0 - eps
        fps = torch.full((B,), float(FPS), device=device)
        hw = torch.full((B,), float(scenes.HEIGHT), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            pred = model.stdit(x_t, t, y, mask, fps, hw, hw)
        err = (pred.float() - target) ** 2
        w = 1.0 + a.fg_weight * fg
        loss = (err * w).mean() / w.mean()
        if a.motion_weight > 0:
            # x0 = x_t + u·(x0 − ε): the clean video the prediction implies. Penalising its
            # frame-to-frame differences against the data's weights the part of the error that
            # decides motion, which plain MSE (dominated by static background) barely sees.
            x0_hat = x_t + ub * pred.float()
            d_hat = x0_hat[:, :, 1:] - x0_hat[:, :, :-1]
            d_ref = x0[:, :, 1:] - x0[:, :, :-1]
            loss = loss + a.motion_weight * ((d_hat - d_ref) ** 2).mean()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a, start_step, (time.time() - t_start) / 60)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(a.ema, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        acc_loss += float(err.detach().mean())
        acc_n += 1
        if step % a.log_every == 0:
            el = time.time() - t_log
            log(loss_log, f"{now_utc():%Y-%m-%dT%H:%M:%S} step {step} loss {acc_loss / acc_n:.5f} "
                          f"lr {lr_at(step, a, start_step, (time.time() - t_start) / 60):.2e} s/step {el / acc_n:.3f}")
            acc_loss, acc_n, t_log = 0.0, 0, time.time()
        if a.eval_every_min and time.time() - last_eval >= a.eval_every_min * 60:
            q = quality(a, ema, eval_prompts, device, step, qual_log, t_start, start_step)
            save_state(a.state, model, ema, opt, step, {})
            last_eval = time.time()
            if q is not None and target_met(a, q):
                q2 = quality(a, ema, eval_prompts, device, step, qual_log, t_start, start_step, seeds=(0, 1))
                if target_met(a, q2):
                    reason = "quality target met"
                    break
        elif a.state and a.save_every and step % a.save_every == 0:
            save_state(a.state, model, ema, opt, step, {})
    if a.state:
        save_state(a.state, model, ema, opt, step, {})
    export(ema, a.out, step, (a.eval_steps, a.cfg_scale, a.sample_shift))
    log(loss_log, f"{now_utc():%Y-%m-%dT%H:%M:%S} stopped at step {step}: {reason}")
    if a.final_eval:
        quality(a, ema, read_prompts(a.eval_prompts), device, step, qual_log, t_start, start_step,
                seeds=(0, 1))
    return step


def target_met(a, q):
    return q["fidelity"] >= a.target_fidelity and q["colour"] >= a.target_attr and q["motion"] >= a.target_attr


def quality(a, ema, prompts, device, step, qual_log, t_start, start_step, seeds=(0,)):
    ema.eval()
    t0 = time.time()
    export(ema, a.out, step, (a.eval_steps, a.cfg_scale, a.sample_shift))
    q, _ = evaluate(ema, prompts, seeds=seeds, steps=a.eval_steps, cfg_scale=a.cfg_scale, device=device,
                    shift=a.sample_shift)
    log(qual_log, f"{now_utc():%Y-%m-%dT%H:%M:%S} step {step} (+{step - start_step} in "
                  f"{(time.time() - t_start) / 60:.1f} min) prompts {len(prompts)} seeds {len(seeds)} "
                  f"steps {a.eval_steps} cfg {a.cfg_scale} shift {a.sample_shift}: "
                  + " ".join(f"{k} {v:.3f}" for k, v in q.items()) + f" (eval {time.time() - t0:.0f}s)")
    return q


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/work/demo-train/export")
    ap.add_argument("--state", default="/work/demo-train/state.pt")
    ap.add_argument("--init-from", help="training-state file to start the weights from (new optimizer)")
    ap.add_argument("--reset-optimizer", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--caption-channels", type=int, default=32)
    ap.add_argument("--patch", default="1,4,4")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--rewarm", type=int, default=0, help="linear lr ramp over N steps after a resume")
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--caption-dropout", type=float, default=0.1)
    ap.add_argument("--fg-weight", type=float, default=0.0,
                    help="extra loss weight on object pixels (0 = plain OpenSora MSE)")
    ap.add_argument("--motion-weight", type=float, default=0.0,
                    help="weight of the frame-difference loss on the implied clean video")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--stop-at", help="UTC HH:MM at which to stop")
    ap.add_argument("--anneal-minutes", type=float, default=0,
                    help="with --max-minutes: decay the lr linearly over the run's last N minutes")
    ap.add_argument("--anneal-floor", type=float, default=0.1, help="lr factor reached at the end of --anneal-minutes")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--eval-every-min", type=float, default=0)
    ap.add_argument("--eval-prompts", default=os.path.join(HERE, "..", "sample-prompts", "eval.txt"))
    ap.add_argument("--eval-subset", type=int, default=0, help="first N eval prompts (0 = all)")
    ap.add_argument("--eval-steps", type=int, default=30)
    ap.add_argument("--cfg-scale", type=float, default=5.0)
    ap.add_argument("--t-shift", type=float, default=1.0,
                    help="training: apply u' = r u / (1 + (r-1) u) to the logit-normal time (r > 1: more noise)")
    ap.add_argument("--high-noise-frac", type=float, default=0.0,
                    help="fraction of training samples drawn with t uniform in [900, 1000]")
    ap.add_argument("--reverse-pairs", action="store_true",
                    help="second half of each batch: the first half played backwards, motion word swapped")
    ap.add_argument("--sample-shift", type=float, default=1.0,
                    help="sampling: same transform on the uniform RF time grid (1 = none)")
    ap.add_argument("--final-eval", action="store_true")
    ap.add_argument("--target-fidelity", type=float, default=0.9)
    ap.add_argument("--target-attr", type=float, default=0.95)
    ap.add_argument("--sample-only", metavar="CHECKPOINT",
                    help="no training: sample eval prompts from a model.safetensors and judge them")
    ap.add_argument("--export-state", metavar="STATE",
                    help="no training: export a training state's weights to --out as model.safetensors")
    ap.add_argument("--weights", choices=("ema", "raw"), default="ema", help="with --export-state")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--gif-dir", help="with --sample-only: write GIFs here")
    a = ap.parse_args(argv)
    if a.anneal_minutes and not a.max_minutes:
        ap.error("--anneal-minutes decays over the end of a --max-minutes run: give --max-minutes too")
    if a.export_state:
        st = torch.load(a.export_state, map_location="cpu", weights_only=False)
        model = DemoModel(st["cfg"], st["vocab"])
        model.load_state_dict(st["ema" if a.weights == "ema" else "model"])
        export(model.eval(), a.out, st["step"], (a.eval_steps, a.cfg_scale, a.sample_shift),
               weights="EMA" if a.weights == "ema" else "raw, non-EMA")
        print(f"exported the {a.weights} weights of {a.export_state} (step {st['step']}) to {a.out}")
        return 0
    if a.sample_only:
        torch.set_num_threads(a.threads)
        model = load_checkpoint(a.sample_only, a.device)
        prompts = read_prompts(a.eval_prompts)
        if a.eval_subset:
            prompts = prompts[:a.eval_subset]
        seeds = tuple(int(s) for s in a.seeds.split(","))
        t0 = time.time()
        q, vids = evaluate(model, prompts, seeds, a.eval_steps, a.cfg_scale, a.device, a.sample_shift)
        print(f"{len(prompts)} prompts x {len(seeds)} seeds, {a.eval_steps} steps, cfg {a.cfg_scale}, "
              f"shift {a.sample_shift}: "
              + " ".join(f"{k} {v:.3f}" for k, v in q.items()) + f" ({time.time() - t0:.0f}s)")
        if a.gif_dir:
            os.makedirs(a.gif_dir, exist_ok=True)
            ps = [p for _ in seeds for p in prompts]
            for i, (v, p) in enumerate(zip(vids, ps)):
                scenes.save_gif(scenes.from_model(v), os.path.join(a.gif_dir, f"{i:03d}_{p.replace(' ', '_')}.gif"))
        return 0
    train(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
