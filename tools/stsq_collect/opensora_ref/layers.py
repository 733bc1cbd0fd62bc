"""Shared building blocks of OpenSora's STDiT (v1.0) and STDiT3 (v1.2), written from
/work/shared/OPENSORA.md §3-§4 (not copied from OpenSora). Float32 on CPU.

Module attribute names follow the state-dict names of OPENSORA.md §2, so `state_dict()` of the
models built from these pieces has exactly OpenSora's keys and shapes.
"""
import fnmatch
import math
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FREQ_DIM = 256  # F, the sinusoidal timestep feature width (§1)
LN_EPS = 1e-6


def dims(t):
    """The shape as Python ints, also when traced for graph export (sizes then become constants)."""
    return tuple(int(v) for v in t.shape)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


# ---------------------------------------------------------------------------------------------
# §4.2 timestep / size embedding
# ---------------------------------------------------------------------------------------------
def timestep_embedding(t, dim=FREQ_DIM, max_period=10000):
    """[cos(t·f_k), sin(t·f_k)], f_k = exp(-ln(max_period)·k/half), all float32. Cos first."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """sinusoid(256) -> Linear(256, C) -> SiLU -> Linear(C, C); keys mlp.0, mlp.2."""

    def __init__(self, hidden_size):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(FREQ_DIM, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t):
        return self.mlp(timestep_embedding(t))


class SizeEmbedder(TimestepEmbedder):
    """v1.2 fps embedder: same structure; the [n] values are tiled (not interleaved) to the batch."""

    def forward(self, s, batch):
        s = s.reshape(-1)
        if s.shape[0] != batch:
            s = s.repeat(batch // s.shape[0])
        return self.mlp(timestep_embedding(s))


# ---------------------------------------------------------------------------------------------
# §4.1 patch embedding
# ---------------------------------------------------------------------------------------------
class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size, in_channels, hidden_size):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, x):
        pt, ph, pw = self.patch_size
        _, _, T, H, W = dims(x)
        # zero-pad at the end of W, H, T (F.pad's order is last dim first)
        x = F.pad(x, (0, (-W) % pw, 0, (-H) % ph, 0, (-T) % pt))
        x = self.proj(x)  # [B, C, Tn, Hn, Wn]
        return x.flatten(2).transpose(1, 2)  # [B, N, C] in (t, h, w) order


def grid_size(x_shape, patch_size):
    """(Tn, Hn, Wn) = ceil(T/pt), ceil(H/ph), ceil(W/pw)."""
    return tuple(-(-x_shape[2 + i] // patch_size[i]) for i in range(3))


# ---------------------------------------------------------------------------------------------
# §4.4 norms and modulation
# ---------------------------------------------------------------------------------------------
def layer_norm(x):
    return F.layer_norm(x, (dims(x)[-1],), eps=LN_EPS)


def t2i_modulate(x, shift, scale):
    return x * (1 + scale) + shift


class RMSNorm(nn.Module):
    """LlamaRMSNorm: x·rsqrt(mean(x²)+eps) in fp32, then ·weight."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


# ---------------------------------------------------------------------------------------------
# §4.6 RoPE (interleaved / GPT-J pairs, all head dims rotate)
# ---------------------------------------------------------------------------------------------
class RotaryEmbedding(nn.Module):
    def __init__(self, dim, theta=10000.0):
        super().__init__()
        k = torch.arange(0, dim, 2, dtype=torch.float32)[: dim // 2]
        # a Parameter with requires_grad=False, so it is in state_dict() and in parameters()
        self.freqs = nn.Parameter(1.0 / (theta ** (k / dim)), requires_grad=False)

    def rotate_queries_or_keys(self, t):
        """t: [..., n, D]; rotates along the sequence axis -2 with positions 0..n-1."""
        n = dims(t)[-2]
        pos = torch.arange(n, dtype=torch.float32)
        ang = pos[:, None] * self.freqs.to(torch.float32)[None]  # [n, D/2]
        ang = torch.stack((ang, ang), dim=-1).reshape(n, -1)  # [θ0, θ0, θ1, θ1, ...]
        cos, sin = ang.cos(), ang.sin()
        shape = dims(t)
        pairs = t.reshape(*shape[:-1], -1, 2)
        rot = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(shape)
        return t * cos + rot * sin


# ---------------------------------------------------------------------------------------------
# §4.5 self-attention, §4.7 cross-attention, §4.8 MLP
# ---------------------------------------------------------------------------------------------
def softmax_attention(q, k, v, scale):
    """o = softmax(q·kᵀ·scale)·v, [..., n, D]; numerically stable softmax, fp32."""
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    s = s - s.amax(dim=-1, keepdim=True)
    p = torch.exp(s)
    p = p / p.sum(dim=-1, keepdim=True)
    return torch.matmul(p, v)


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qk_norm=False):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim, bias=True)
        # Called with q, k, v as rows [tokens, C] (heads interleaved) as the products see them:
        # the collector's taps for integer attention products (the engine's `<attention>.q/.k/.v`).
        self.operand_hook = None

    def forward(self, x, rope=None):
        Bp, n, C = dims(x)
        qkv = self.qkv(x).view(Bp, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B', H, n, D]
        q, k = self.q_norm(q), self.k_norm(k)  # RMSNorm before RoPE
        if rope is not None:
            q, k = rope(q), rope(k)
        if self.operand_hook is not None:
            self.operand_hook(*(t.transpose(1, 2).reshape(Bp * n, C) for t in (q, k, v)))
        o = softmax_attention(q, k, v, self.scale)
        o = o.transpose(1, 2).reshape(Bp, n, C)
        return self.proj(o)


class MultiHeadCrossAttention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.operand_hook = None   # as Attention's: q [B·N, C], k and v [Σ y_lens, C] (packed form only)

    def forward(self, x, cond, y_lens):
        """x [B, N, C]; cond [1, Σ y_lens, C] packed caption tokens; sample b attends to its own.
        Dense form (graph export): cond [B, L, C] padded, y_lens a bool mask [B, L]; the same
        attention, padded keys masked out instead of packed away."""
        B, N, C = dims(x)
        H, D = self.num_heads, self.head_dim
        q = self.q_linear(x).view(B, N, H, D).transpose(1, 2)  # [B, H, N, D]
        if torch.is_tensor(y_lens) and y_lens.dtype == torch.bool:
            L = dims(cond)[1]
            kv = self.kv_linear(cond).view(B, L, 2, H, D)
            k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)  # [B, H, L, D]
            s = torch.matmul(q, k.transpose(-1, -2)) * self.scale
            s = s.masked_fill(~y_lens[:, None, None, :], float("-inf"))
            s = s - s.amax(dim=-1, keepdim=True)
            p = torch.exp(s)
            o = torch.matmul(p / p.sum(dim=-1, keepdim=True), v)
            return self.proj(o.transpose(1, 2).reshape(B, N, C))
        kv = self.kv_linear(cond).view(-1, 2, H, D)  # [M, 2, H, D]
        if self.operand_hook is not None:
            M = kv.shape[0]
            self.operand_hook(q.transpose(1, 2).reshape(B * N, C), kv[:, 0].reshape(M, C), kv[:, 1].reshape(M, C))
        outs = []
        start = 0
        for b in range(B):
            L = int(y_lens[b])
            kb = kv[start:start + L, 0].transpose(0, 1)  # [H, L, D]
            vb = kv[start:start + L, 1].transpose(0, 1)
            outs.append(softmax_attention(q[b], kb, vb, self.scale))  # [H, N, D]
            start += L
        o = torch.stack(outs, 0).transpose(1, 2).reshape(B, N, C)
        return self.proj(o)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, out_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class CaptionEmbedder(nn.Module):
    """y_proj (Linear Cc->C, GELU-tanh, Linear C->C) and the null caption buffer y_embedding."""

    def __init__(self, caption_channels, hidden_size, token_num):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(token_num, caption_channels) / caption_channels ** 0.5)

    def forward(self, y):
        return self.y_proj(y)


def pack_text(y, mask):
    """§4.7: y [B, 1, L, C] (after y_proj), mask [n, L] or None -> (y_packed [1, Σ, C], y_lens)."""
    B, _, L, C = dims(y)
    if mask is None:
        return y.reshape(1, B * L, C), [L] * B
    mask = torch.as_tensor(mask)
    if mask.shape[0] != B:
        mask = mask.repeat(B // mask.shape[0], 1)  # tile: [m0..m(n-1), m0..m(n-1)]
    keep = mask != 0
    packed = y[:, 0][keep]  # concatenates valid tokens of each sample in batch order
    return packed.reshape(1, -1, C), [int(v) for v in keep.sum(dim=1)]


class T2IFinalLayer(nn.Module):
    def __init__(self, hidden_size, num_patch, out_channels):
        super().__init__()
        self.linear = nn.Linear(hidden_size, num_patch * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size ** 0.5)

    def forward(self, x, t, x_mask=None, t0=None, T=None, S=None):
        shift, scale = (self.scale_shift_table[None] + t[:, None]).chunk(2, dim=1)
        xn = layer_norm(x)
        out = t2i_modulate(xn, shift, scale)
        if x_mask is not None:
            shift0, scale0 = (self.scale_shift_table[None] + t0[:, None]).chunk(2, dim=1)
            out = frame_select(x_mask, out, t2i_modulate(xn, shift0, scale0), T, S)
        return self.linear(out)


def frame_select(x_mask, x, x_zero, T, S):
    """Per latent frame: x where x_mask[b, t] else x_zero (tokens [B, T·S, C])."""
    B, N, C = dims(x)
    m = x_mask.to(torch.bool)[:, :, None, None]
    out = torch.where(m, x.view(B, T, S, C), x_zero.view(B, T, S, C))
    return out.view(B, N, C)


def unpatchify(x, grid, patch_size, out_channels, crop=None):
    """[B, N, pt·ph·pw·Cout] (features ordered pt, ph, pw, c) -> [B, Cout, T, H, W], then crop."""
    Tn, Hn, Wn = grid
    pt, ph, pw = patch_size
    B = dims(x)[0]
    x = x.view(B, Tn, Hn, Wn, pt, ph, pw, out_channels)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(B, out_channels, Tn * pt, Hn * ph, Wn * pw)
    if crop is not None:
        x = x[:, :, : crop[0], : crop[1], : crop[2]]
    return x


# ---------------------------------------------------------------------------------------------
# §4.11 fixed sincos positional embeddings
# ---------------------------------------------------------------------------------------------
def sincos_1d_np(d, pos):
    """numpy, v1.0 style: ω float64, [sin | cos]; pos any float array -> [len(pos), d] float64."""
    omega = np.arange(d // 2, dtype=np.float64) / (d / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", np.asarray(pos, dtype=np.float64).reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def pos_embed_2d_v10(C, Hn, Wn, scale):
    """v1.0 spatial table [1, S, C] float32: float32 grid, float64 trig; column half first."""
    rows = np.arange(Hn, dtype=np.float32) / np.float32(scale)
    cols = np.arange(Wn, dtype=np.float32) / np.float32(scale)
    col_pos = np.tile(cols, Hn)  # token r·Wn + c -> cols[c]
    row_pos = np.repeat(rows, Wn)  # -> rows[r]
    emb = np.concatenate([sincos_1d_np(C // 2, col_pos), sincos_1d_np(C // 2, row_pos)], axis=1)
    return torch.from_numpy(emb.astype(np.float32))[None]


def pos_embed_temporal_v10(C, Tn, time_scale):
    """v1.0 temporal table [1, Tn, C] float32 at positions τ/time_scale (float64)."""
    pos = np.arange(Tn, dtype=np.float64) / time_scale
    return torch.from_numpy(sincos_1d_np(C, pos).astype(np.float32))[None]


def pos_embed_2d_v12(C, Hn, Wn, scale, base_size):
    """v1.2 PositionEmbedding2D in float32: row_pos = r/s·(b/Hn), col_pos = c/s·(b/Wn)."""
    half = C // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, half, 2, dtype=torch.float32) / half))  # ω_k, k < C/4
    rows = torch.arange(Hn, dtype=torch.float32) / scale
    cols = torch.arange(Wn, dtype=torch.float32) / scale
    if base_size is not None:
        rows = rows * (base_size / Hn)
        cols = cols * (base_size / Wn)

    def emb(p):
        a = p[:, None] * inv_freq[None]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=-1)

    col_pos = cols.repeat(Hn)
    row_pos = rows.repeat_interleave(Wn)
    return torch.cat([emb(col_pos), emb(row_pos)], dim=-1)[None]  # [1, S, C]


# ---------------------------------------------------------------------------------------------
# capture of block linears
# ---------------------------------------------------------------------------------------------
BLOCK_PREFIXES = ("blocks.", "spatial_blocks.", "temporal_blocks.")


def block_linear_names(model):
    """State-dict prefixes of every nn.Linear inside the transformer blocks, in module order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(BLOCK_PREFIXES)]


@contextmanager
def capture_linears(model, pattern="*", block_only=True, keep_outputs=True):
    """Record the input (and output) of every matching nn.Linear by its state-dict prefix.

    Yields a dict name -> list of {"input": tensor, "output": tensor}, one entry per call
    (one per forward pass), tensors detached copies in the shape the module saw them, e.g.
    `spatial_blocks.1.attn.qkv` input [B·Tn, S, C], `temporal_blocks.1.attn.qkv` input [B·S, Tn, C],
    `*.cross_attn.kv_linear` input [1, Σ y_lens, C].
    """
    records = {}
    handles = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        if block_only and not name.startswith(BLOCK_PREFIXES):
            continue
        if not fnmatch.fnmatchcase(name, pattern):
            continue

        def hook(m, inp, out, name=name):
            rec = {"input": inp[0].detach().clone()}
            if keep_outputs:
                rec["output"] = out.detach().clone()
            records.setdefault(name, []).append(rec)

        handles.append(mod.register_forward_hook(hook))
    try:
        yield records
    finally:
        for h in handles:
            h.remove()
