"""OpenSora v1.0 STDiT, float32 reference written from OPENSORA.md §2.1, §4, §5.

Generalisation beyond the v1.0.0 code: positions are recomputed for the runtime token grid and
the output is cropped to the input size, so a latent that needs padding (W odd) runs too. For
shapes divisible by the patch that equal the config's input_size this is exactly OpenSora's
computation (the persistent pos_embed buffers hold the same values).
"""
import math

import torch
import torch.nn as nn

from .layers import (
    Attention,
    CaptionEmbedder,
    Mlp,
    MultiHeadCrossAttention,
    PatchEmbed3D,
    T2IFinalLayer,
    TimestepEmbedder,
    grid_size,
    layer_norm,
    pack_text,
    pos_embed_2d_v10,
    pos_embed_temporal_v10,
    t2i_modulate,
    unpatchify,
)

STDIT_DEFAULTS = dict(
    model_type="STDiT",
    input_size=[16, 64, 64],
    in_channels=4,
    patch_size=[1, 2, 2],
    hidden_size=1152,
    depth=28,
    num_heads=16,
    mlp_ratio=4.0,
    pred_sigma=True,
    caption_channels=4096,
    model_max_length=120,
    space_scale=1.0,
    time_scale=1.0,
)

XL_CONFIG = dict(STDIT_DEFAULTS)  # STDiT-XL/2 for 16x512x512


class STDiTBlock(nn.Module):
    def __init__(self, hidden_size, num_heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(hidden_size, num_heads, qk_norm=False)
        self.cross_attn = MultiHeadCrossAttention(hidden_size, num_heads)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio), hidden_size)
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size ** 0.5)
        self.attn_temp = Attention(hidden_size, num_heads, qk_norm=False)

    def forward(self, x, y, t_mlp, y_lens, T, S, tpe=None):
        B, N, C = x.shape
        mod = (self.scale_shift_table[None] + t_mlp.reshape(B, 6, C)).chunk(6, dim=1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod

        # spatial attention
        a = t2i_modulate(layer_norm(x), shift_msa, scale_msa)
        a = self.attn(a.reshape(B * T, S, C)).reshape(B, N, C)
        x = x + gate_msa * a

        # temporal attention: no norm, no modulation, block-0 temporal position, gate_msa reused
        xt = x.view(B, T, S, C).transpose(1, 2).reshape(B * S, T, C)
        if tpe is not None:
            xt = xt + tpe
        xt = self.attn_temp(xt)
        xt = xt.view(B, S, T, C).transpose(1, 2).reshape(B, N, C)
        x = x + gate_msa * xt

        # cross-attention
        x = x + self.cross_attn(x, y, y_lens)

        # MLP
        m = self.mlp(t2i_modulate(layer_norm(x), shift_mlp, scale_mlp))
        return x + gate_mlp * m


class STDiT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = dict(STDIT_DEFAULTS)
        c.update(cfg)
        if c.get("model_type", "STDiT") != "STDiT":
            raise ValueError(f"model_type {c['model_type']!r} is not STDiT")
        self.config = c
        self.hidden_size = C = int(c["hidden_size"])
        self.num_heads = int(c["num_heads"])
        self.depth = int(c["depth"])
        self.in_channels = int(c["in_channels"])
        self.out_channels = self.in_channels * 2 if c["pred_sigma"] else self.in_channels
        self.patch_size = tuple(int(p) for p in c["patch_size"])
        self.input_size = tuple(int(s) for s in c["input_size"])
        self.space_scale = float(c["space_scale"])
        self.time_scale = float(c["time_scale"])
        mlp_ratio = float(c["mlp_ratio"])

        # persistent buffers, as OpenSora builds them from input_size (floor division)
        t0, h0, w0 = (self.input_size[i] // self.patch_size[i] for i in range(3))
        self.register_buffer("pos_embed", pos_embed_2d_v10(C, h0, w0, self.space_scale))
        self.register_buffer("pos_embed_temporal", pos_embed_temporal_v10(C, t0, self.time_scale))

        self.x_embedder = PatchEmbed3D(self.patch_size, self.in_channels, C)
        self.t_embedder = TimestepEmbedder(C)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C, bias=True))
        self.y_embedder = CaptionEmbedder(int(c["caption_channels"]), C, int(c["model_max_length"]))
        self.blocks = nn.ModuleList([STDiTBlock(C, self.num_heads, mlp_ratio) for _ in range(self.depth)])
        self.final_layer = T2IFinalLayer(C, math.prod(self.patch_size), self.out_channels)

    def forward(self, x, timestep, y, mask=None, x_mask=None):
        if x_mask is not None:
            raise NotImplementedError("x_mask is not part of the v1.0 inference path")
        x = x.to(torch.float32)
        timestep = timestep.to(torch.float32)
        y = y.to(torch.float32)
        B = x.shape[0]
        Tn, Hn, Wn = grid_size(x.shape, self.patch_size)
        S = Hn * Wn
        # recomputed for the runtime grid (identical to the buffers when the shape matches)
        pos = pos_embed_2d_v10(self.hidden_size, Hn, Wn, self.space_scale)
        tpe = pos_embed_temporal_v10(self.hidden_size, Tn, self.time_scale)

        h = self.x_embedder(x)
        h = (h.view(B, Tn, S, -1) + pos[:, None]).view(B, Tn * S, -1)

        t = self.t_embedder(timestep)
        t_mlp = self.t_block(t)
        y = self.y_embedder(y)
        y, y_lens = pack_text(y, mask)

        for i, block in enumerate(self.blocks):
            h = block(h, y, t_mlp, y_lens, Tn, S, tpe=tpe if i == 0 else None)

        h = self.final_layer(h, t)
        out = unpatchify(h, (Tn, Hn, Wn), self.patch_size, self.out_channels, crop=x.shape[2:])
        return out.to(torch.float32)
