"""OpenSora v1.2 STDiT3, float32 reference written from OPENSORA.md §2.2, §4, §6, §10 (fp32 parity
target: the bf16 quirks of §10 are deliberately not reproduced)."""
import math

import torch
import torch.nn as nn

from .layers import (  # noqa: E501
    dims,
    Attention,
    CaptionEmbedder,
    Mlp,
    MultiHeadCrossAttention,
    PatchEmbed3D,
    RotaryEmbedding,
    SizeEmbedder,
    T2IFinalLayer,
    TimestepEmbedder,
    frame_select,
    grid_size,
    layer_norm,
    pack_text,
    pos_embed_2d_v12,
    t2i_modulate,
    unpatchify,
)

STDIT3_DEFAULTS = dict(
    model_type="STDiT3",
    caption_channels=4096,
    depth=28,
    hidden_size=1152,
    in_channels=4,
    input_sq_size=512,
    mlp_ratio=4.0,
    model_max_length=300,
    num_heads=16,
    patch_size=[1, 2, 2],
    pred_sigma=True,
    qk_norm=True,
)

XL_CONFIG = dict(STDIT3_DEFAULTS)  # hpcai-tech/OpenSora-STDiT-v3 config.json (math-relevant keys)


class STDiT3Block(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio, qk_norm, temporal):
        super().__init__()
        self.temporal = temporal
        self.hidden_size = hidden_size
        self.attn = Attention(hidden_size, num_heads, qk_norm=qk_norm)
        self.cross_attn = MultiHeadCrossAttention(hidden_size, num_heads)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), hidden_size)
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size ** 0.5)

    def forward(self, x, y, t_mlp, y_lens, T, S, rope=None, x_mask=None, t0_mlp=None):
        B, N, C = dims(x)
        mod = (self.scale_shift_table[None] + t_mlp.reshape(B, 6, C)).chunk(6, dim=1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod
        if x_mask is not None:
            mod0 = (self.scale_shift_table[None] + t0_mlp.reshape(B, 6, C)).chunk(6, dim=1)
            shift_msa0, scale_msa0, gate_msa0, shift_mlp0, scale_mlp0, gate_mlp0 = mod0

        # self-attention branch
        xn = layer_norm(x)
        a = t2i_modulate(xn, shift_msa, scale_msa)
        if x_mask is not None:
            a = frame_select(x_mask, a, t2i_modulate(xn, shift_msa0, scale_msa0), T, S)
        if self.temporal:
            a = a.view(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)  # (B S) T C
            a = self.attn(a, rope=rope)
            a = a.view(B, S, T, C).transpose(1, 2).reshape(B, N, C)
        else:
            a = a.reshape(B * T, S, C)  # (B T) S C
            a = self.attn(a)
            a = a.reshape(B, N, C)
        if x_mask is not None:
            a = frame_select(x_mask, gate_msa * a, gate_msa0 * a, T, S)
        else:
            a = gate_msa * a
        x = x + a

        # cross-attention (plain residual)
        x = x + self.cross_attn(x, y, y_lens)

        # MLP branch
        xn = layer_norm(x)
        m = t2i_modulate(xn, shift_mlp, scale_mlp)
        if x_mask is not None:
            m = frame_select(x_mask, m, t2i_modulate(xn, shift_mlp0, scale_mlp0), T, S)
        m = self.mlp(m)
        if x_mask is not None:
            m = frame_select(x_mask, gate_mlp * m, gate_mlp0 * m, T, S)
        else:
            m = gate_mlp * m
        return x + m


class STDiT3(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = dict(STDIT3_DEFAULTS)
        c.update({k: v for k, v in cfg.items()})
        if c.get("model_type", "STDiT3") != "STDiT3":
            raise ValueError(f"model_type {c['model_type']!r} is not STDiT3")
        self.config = c
        self.hidden_size = C = int(c["hidden_size"])
        self.num_heads = int(c["num_heads"])
        self.depth = int(c["depth"])
        self.in_channels = int(c["in_channels"])
        self.out_channels = self.in_channels * 2 if c["pred_sigma"] else self.in_channels
        self.patch_size = tuple(int(p) for p in c["patch_size"])
        self.input_sq_size = float(c["input_sq_size"])
        mlp_ratio = float(c["mlp_ratio"])
        qk_norm = bool(c["qk_norm"])

        self.rope = RotaryEmbedding(C // self.num_heads)
        self.x_embedder = PatchEmbed3D(self.patch_size, self.in_channels, C)
        self.t_embedder = TimestepEmbedder(C)
        self.fps_embedder = SizeEmbedder(C)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C, bias=True))
        self.y_embedder = CaptionEmbedder(int(c["caption_channels"]), C, int(c["model_max_length"]))
        self.spatial_blocks = nn.ModuleList(
            [STDiT3Block(C, self.num_heads, mlp_ratio, qk_norm, temporal=False) for _ in range(self.depth)]
        )
        self.temporal_blocks = nn.ModuleList(
            [STDiT3Block(C, self.num_heads, mlp_ratio, qk_norm, temporal=True) for _ in range(self.depth)]
        )
        self.final_layer = T2IFinalLayer(C, math.prod(self.patch_size), self.out_channels)

    def forward(self, x, timestep, y, mask=None, fps=None, height=None, width=None, x_mask=None):
        x = x.to(torch.float32)
        timestep = timestep.to(torch.float32)
        y = y.to(torch.float32)
        B = dims(x)[0]
        Tn, Hn, Wn = (int(v) for v in grid_size(x.shape, self.patch_size))   # ints also when traced
        S = Hn * Wn
        base_size = round(S ** 0.5)
        scale = (float(height.reshape(-1)[0]) * float(width.reshape(-1)[0])) ** 0.5 / self.input_sq_size
        pos = pos_embed_2d_v12(self.hidden_size, Hn, Wn, scale, base_size)

        fps_emb = self.fps_embedder(fps.to(torch.float32), B)
        t = self.t_embedder(timestep) + fps_emb
        t_mlp = self.t_block(t)
        t0 = t0_mlp = None
        if x_mask is not None:
            t0 = self.t_embedder(torch.zeros_like(timestep)) + fps_emb
            t0_mlp = self.t_block(t0)

        y = self.y_embedder(y)  # [B, 1, L, C]
        if getattr(self, "dense_captions", False):
            # Graph export: padded captions and a mask instead of packing (see MultiHeadCrossAttention).
            keep = torch.as_tensor(mask) != 0
            y, y_lens = y[:, 0], keep.repeat(B // dims(keep)[0], 1)
        else:
            y, y_lens = pack_text(y, mask)

        h = self.x_embedder(x)  # [B, N, C]
        h = (h.view(B, Tn, S, -1) + pos[:, None]).view(B, Tn * S, -1)

        rope = self.rope.rotate_queries_or_keys
        for sb, tb in zip(self.spatial_blocks, self.temporal_blocks):
            h = sb(h, y, t_mlp, y_lens, Tn, S, x_mask=x_mask, t0_mlp=t0_mlp)
            h = tb(h, y, t_mlp, y_lens, Tn, S, rope=rope, x_mask=x_mask, t0_mlp=t0_mlp)

        h = self.final_layer(h, t, x_mask, t0, Tn, S)
        out = unpatchify(h, (Tn, Hn, Wn), self.patch_size, self.out_channels, crop=x.shape[2:])
        return out.to(torch.float32)
