#!/usr/bin/env python3
"""Write the engine fixtures of issue 3 to Tests/Fixtures/engine/ (see tools/README.md).

Random-weight STDiT3 (v1.2) and STDiT (v1.0) checkpoints with OpenSora's exact key names at toy
size, forward inputs/outputs with every block linear's input, sampler schedules and whole 5-step
sampling trajectories, all computed by the independent float32 reference in tools/opensora_ref.
Deterministic (fixed seeds, CPU, one thread).

Usage: tools/.venv/bin/python tools/make_engine_fixtures.py [OUT_DIR]
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import struct

from safetensors import safe_open
from safetensors.torch import save as st_save

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opensora_ref import STDiT, STDiT3, block_linear_names, capture_linears  # noqa: E402
from opensora_ref.layers import pos_embed_2d_v10, pos_embed_temporal_v10  # noqa: E402
from opensora_ref.samplers import (  # noqa: E402
    SpacedDiffusion,
    iddpm_sample,
    rf_ratio,
    rf_sample,
    rf_timesteps,
    space_timesteps,
)

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "Tests", "Fixtures", "engine")
FORMAT = "stsq-engine-fixture/1"
TOLERANCE = "max|delta| <= 1e-4 * max|ref| per tensor"

STDIT3_CFG = dict(
    model_type="STDiT3", caption_channels=32, depth=2, hidden_size=64, in_channels=4,
    input_sq_size=64, mlp_ratio=4.0, model_max_length=12, num_heads=4, patch_size=[1, 2, 2],
    pred_sigma=True, qk_norm=True,
)
STDIT_CFG = dict(
    model_type="STDiT", caption_channels=32, depth=2, hidden_size=64, in_channels=4,
    input_size=[3, 4, 6], mlp_ratio=4.0, model_max_length=12, num_heads=4, patch_size=[1, 2, 2],
    pred_sigma=True, space_scale=0.5, time_scale=1.0,
)

MANIFEST = {"format": FORMAT, "tolerance": TOLERANCE, "files": {}}
CHECKS = []


def check(name, value, ok):
    CHECKS.append({"check": name, "value": value, "ok": bool(ok)})
    print(f"  [{'ok' if ok else 'FAIL'}] {name}: {value}")
    if not ok:
        raise SystemExit(f"self-check failed: {name}")


def save(fname, tensors, meta):
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    meta = {"format": FORMAT, **meta}
    write_safetensors(os.path.join(OUT, fname), tensors, {k: str(v) for k, v in meta.items()})
    MANIFEST["files"][fname] = {
        **{k: v for k, v in meta.items() if k != "format"},
        "bytes": os.path.getsize(os.path.join(OUT, fname)),
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()},
    }


def write_safetensors(path, tensors, metadata):
    """safetensors' own serializer, with the JSON header re-emitted in a fixed key order (the
    library's header order is hash-randomised), so regenerating gives byte-identical files."""
    blob = st_save(tensors, metadata=metadata)
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__").items()))}
    ordered.update(sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]))
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(blob[8 + n:])
    with safe_open(path, "pt") as f:  # round-trip check with the library reader
        assert f.metadata() == metadata and sorted(f.keys()) == sorted(tensors)
        for k in tensors:
            assert torch.equal(f.get_tensor(k), tensors[k]), k


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def init_weights(model, seed):
    """OpenSora-like scales, but nothing zero: xavier-uniform linears (also t_embedder, t_block,
    y_proj and the layers OpenSora zero-inits), small random biases, tables randn/sqrt(C),
    qk-norm weights around 1. rope.freqs and pos_embed* keep their exact recomputable values."""
    g = torch.Generator().manual_seed(seed)

    def xavier(w):
        fan_out, fan_in = w.shape[0], w[0].numel()
        a = math.sqrt(6.0 / (fan_in + fan_out))
        w.copy_((torch.rand(w.shape, generator=g) * 2 - 1) * a)

    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Linear, nn.Conv3d)):
                xavier(mod.weight)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.05)
        for name, p in model.named_parameters():
            if name.endswith("scale_shift_table"):
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        emb = model.y_embedder.y_embedding
        emb.copy_(torch.randn(emb.shape, generator=g) / emb.shape[1] ** 0.5)


EXACT_KEYS = ("rope.freqs", "pos_embed", "pos_embed_temporal")


def make_checkpoint(name, model, cfg, wdtype, seed):
    init_weights(model, seed)
    sd = model.state_dict()
    tensors = {}
    with torch.no_grad():
        for k, v in sd.items():
            if k in EXACT_KEYS:
                tensors[k] = v.to(torch.float32)  # recomputable values, kept exact in F32
            else:
                q = v.to(wdtype)
                tensors[k] = q
                v.copy_(q.to(torch.float32))  # the reference runs from the stored (rounded) weights
    cfg_text = json.dumps(cfg, sort_keys=True)
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()})
    save(f"{name}.safetensors", tensors, {
        "kind": "checkpoint", "config": cfg_text, "weight_dtypes": ",".join(dtypes),
        "description": f"random-weight {cfg['model_type']} (depth {cfg['depth']}, hidden {cfg['hidden_size']}) with "
                       f"OpenSora's exact state-dict keys; weights {wdtype}, {'/'.join(EXACT_KEYS)} exact F32",
    })
    with open(os.path.join(OUT, f"{name}.config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {len(sd)} state-dict entries, {n_params} parameters, weights {wdtype}")
    return model.eval()


# ---------------------------------------------------------------------------------------------
# forward cases
# ---------------------------------------------------------------------------------------------
CAPTURE_LAYOUT = {
    "spatial_blocks.*.attn.qkv|proj": "[B*Tn, S, C|C]: (b, t) rows of S tokens (token order within frame h*Wn+w)",
    "temporal_blocks.*.attn.qkv|proj": "[B*S, Tn, C]: (b, s) rows of Tn frames",
    "blocks.*.attn.qkv|proj (v1.0)": "[B*Tn, S, C]",
    "blocks.*.attn_temp.qkv|proj (v1.0)": "[B*S, Tn, C] (block 0 qkv input includes pos_embed_temporal)",
    "*.cross_attn.q_linear|proj": "[B, N, C], N = Tn*Hn*Wn in (t, h, w) order",
    "*.cross_attn.kv_linear": "[1, sum(y_lens), C]: valid caption tokens of every sample, batch order",
    "*.mlp.fc1": "[B, N, C]",
    "*.mlp.fc2": "[B, N, int(C*mlp_ratio)] (post GELU-tanh)",
}


def run_forward_case(model, fname, inputs, description, capture=True):
    with torch.no_grad():
        if capture:
            with capture_linears(model, keep_outputs=False) as rec:
                out = model(**inputs)
        else:
            out = model(**inputs)
    tensors = dict(inputs)
    tensors["out"] = out
    names = []
    if capture:
        for name in block_linear_names(model):
            assert len(rec[name]) == 1
            tensors[f"capture.{name}"] = rec[name][0]["input"]
            names.append(name)
    print(f"{fname}: out {list(out.shape)} max|out| {out.abs().max():.3f} std {out.std():.3f}, {len(names)} captures")
    save(fname, tensors, {
        "kind": "forward", "checkpoint": fname.split(".")[0], "description": description,
        "tolerance": TOLERANCE, "capture_layout": json.dumps(CAPTURE_LAYOUT) if capture else "none",
        "captured_layers": ",".join(names),
    })
    return out


def v12_self_checks(model, inp):
    print("self-checks (STDiT3):")
    with torch.no_grad():
        out = model(**inp)
        B, _, T = inp["x"].shape[:3]
        o = model(**inp, x_mask=torch.ones(B, T, dtype=torch.bool))
        check("v1.2 all-true x_mask vs none, max|d|", float((o - out).abs().max()), float((o - out).abs().max()) == 0.0)
        xm = torch.zeros(B, T, dtype=torch.bool)
        xm[:, -1] = True
        d = float((model(**inp, x_mask=xm) - out).abs().max())
        check("v1.2 partial x_mask (t0 path) changes output, max|d|", d, d > 1e-3)
        W = inp["x"].shape[-1]
        xp = F.pad(inp["x"], (0, 1))
        o = model(**{**inp, "x": xp})[..., :W]
        check("v1.2 odd W == explicit zero pad + crop, max|d|", float((o - out).abs().max()), float((o - out).abs().max()) == 0.0)
        y2 = inp["y"].clone()
        m = inp["mask"].repeat(B // inp["mask"].shape[0], 1)
        y2[:, 0][m == 0] = 100.0
        d = float((model(**{**inp, "y": y2}) - out).abs().max())
        check("v1.2 masked caption tokens have no effect, max|d|", d, d == 0.0)
        if inp["mask"].shape[0] != B:
            r = B // inp["mask"].shape[0]
            o = model(**{**inp, "mask": inp["mask"].repeat(r, 1), "fps": inp["fps"].repeat(r),
                         "height": inp["height"].repeat(r), "width": inp["width"].repeat(r)})
            check("v1.2 CFG mask/fps tiling == explicit [n*2] inputs, max|d|", float((o - out).abs().max()), float((o - out).abs().max()) == 0.0)
        # cross-attention through a dense key-padding mask instead of packing
        blk = model.spatial_blocks[0].cross_attn
        xq = torch.randn(B, 5, model.hidden_size, generator=torch.Generator().manual_seed(7))
        yy = model.y_embedder(inp["y"])
        from opensora_ref.layers import pack_text
        packed, lens = pack_text(yy, inp["mask"])
        a = blk(xq, packed, lens)
        H, D = blk.num_heads, blk.head_dim
        q = blk.q_linear(xq).view(B, 5, H, D).transpose(1, 2)
        kv = blk.kv_linear(yy[:, 0]).view(B, -1, 2, H, D)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        s = q @ k.transpose(-1, -2) * D ** -0.5 + torch.where(m[:, None, None, :] != 0, 0.0, -math.inf)
        dense = blk.proj((s.softmax(-1) @ v).transpose(1, 2).reshape(B, 5, -1))
        d = float((dense - a).abs().max())
        check("cross-attn packing == dense key-padding mask, max|d|", d, d < 1e-5)


def v10_self_checks(model, inp):
    print("self-checks (STDiT):")
    C = model.hidden_size
    t0, h0, w0 = (model.input_size[i] // model.patch_size[i] for i in range(3))
    d = float((pos_embed_2d_v10(C, h0, w0, model.space_scale) - model.pos_embed).abs().max())
    check("v1.0 recomputed pos_embed == persistent buffer", d, d == 0.0)
    d = float((pos_embed_temporal_v10(C, t0, model.time_scale) - model.pos_embed_temporal).abs().max())
    check("v1.0 recomputed pos_embed_temporal == persistent buffer", d, d == 0.0)
    with torch.no_grad():
        out = model(**inp)
        B = inp["x"].shape[0]
        m = inp["mask"].repeat(B // inp["mask"].shape[0], 1)
        y2 = inp["y"].clone()
        y2[:, 0][m == 0] = -50.0
        d = float((model(**{**inp, "y": y2}) - out).abs().max())
        check("v1.0 masked caption tokens have no effect, max|d|", d, d == 0.0)
        W = inp["x"].shape[-1]
        if W % 2:
            o = model(**{**inp, "x": F.pad(inp["x"], (0, 1))})[..., :W]
            check("v1.0 odd W == explicit zero pad + crop, max|d|", float((o - out).abs().max()), float((o - out).abs().max()) == 0.0)


# ---------------------------------------------------------------------------------------------
def xl_state_dict_checks():
    """OPENSORA.md §2: XL/2 state-dict entry and parameter counts, built on the meta device."""
    from opensora_ref.stdit import XL_CONFIG as XL10
    from opensora_ref.stdit3 import XL_CONFIG as XL12
    print("state-dict checks (XL/2 on the meta device):")
    with torch.device("meta"):
        m3, m1 = STDiT3(XL12), STDiT(XL10)
    for name, m, entries, params in (("STDiT3-XL/2", m3, 973, 1_207_643_972), ("STDiT-XL/2", m1, 550, 759_620_768)):
        got = (len(m.state_dict()), sum(p.numel() for p in m.parameters()))
        check(f"{name} state-dict entries, parameters", list(got), got == (entries, params))


def main():
    os.makedirs(OUT, exist_ok=True)
    xl_state_dict_checks()
    g = torch.Generator().manual_seed(20240603)
    L, Cc = STDIT3_CFG["model_max_length"], STDIT3_CFG["caption_channels"]

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g) * std

    # ---------------- v1.2 ----------------
    m3 = make_checkpoint("stdit3-tiny", STDiT3(STDIT3_CFG), STDIT3_CFG, torch.float16, seed=3)
    # A: CFG batch [cond; uncond], n = 1, latent 3x4x5 (W odd -> padded to 6, cropped back)
    y_cond = randn(1, 1, L, Cc, std=0.3)
    inp_a = {
        "x": randn(2, 4, 3, 4, 5),
        "timestep": torch.tensor([812.5, 812.5]),
        "y": torch.cat([y_cond, m3.y_embedder.y_embedding[None, None]], 0),
        "mask": torch.tensor([[1] * 7 + [0] * (L - 7)], dtype=torch.int64),
        "fps": torch.tensor([24.0]), "height": torch.tensor([32.0]), "width": torch.tensor([40.0]),
    }
    v12_self_checks(m3, inp_a)
    run_forward_case(m3, "stdit3-tiny.forward-cfg.safetensors", inp_a,
                     "STDiT3 CFG batch B=2 (y = [cond; null caption y_embedding]), n=1 mask tiled, latent 3x4x5 "
                     "(W padded to 6 and cropped), 7 of 12 caption tokens valid; capture.* = input of every block linear")
    # B: plain batch, n = B = 2, different timesteps/fps/masks, H and W both odd (padding in both)
    inp_b = {
        "x": randn(2, 4, 2, 5, 7),
        "timestep": torch.tensor([999.0, 123.456]),
        "y": randn(2, 1, L, Cc, std=0.3),
        "mask": torch.tensor([[1] * 5 + [0] * (L - 5), [1] * L], dtype=torch.int64),
        "fps": torch.tensor([24.0, 30.0]), "height": torch.tensor([40.0, 40.0]), "width": torch.tensor([56.0, 56.0]),
    }
    run_forward_case(m3, "stdit3-tiny.forward-batch.safetensors", inp_b,
                     "STDiT3 batch B=n=2, per-sample timestep/fps/mask (5 and 12 tokens), latent 2x5x7 "
                     "(H and W padded), height/width equal across samples", capture=False)

    # ---------------- v1.0 ----------------
    m1 = make_checkpoint("stdit-tiny", STDiT(STDIT_CFG), STDIT_CFG, torch.bfloat16, seed=1)
    y_cond1 = randn(1, 1, L, Cc, std=0.3)
    inp_c = {
        "x": randn(2, 4, 3, 4, 6),
        "timestep": torch.tensor([600.0, 600.0]),
        "y": torch.cat([y_cond1, m1.y_embedder.y_embedding[None, None]], 0),
        "mask": torch.tensor([[1] * 9 + [0] * (L - 9)], dtype=torch.int64),
    }
    v10_self_checks(m1, inp_c)
    run_forward_case(m1, "stdit-tiny.forward-cfg.safetensors", inp_c,
                     "STDiT CFG batch B=2, n=1, latent 3x4x6 = config input_size (exact OpenSora v1.0 shape), "
                     "9 of 12 caption tokens valid; capture.* = input of every block linear")
    inp_d = {
        "x": randn(2, 4, 3, 4, 5),
        "timestep": torch.tensor([999.0, 0.0]),
        "y": randn(2, 1, L, Cc, std=0.3),
        "mask": torch.tensor([[1] * 3 + [0] * (L - 3), [1] * 11 + [0]], dtype=torch.int64),
    }
    v10_self_checks(m1, inp_d)
    run_forward_case(m1, "stdit-tiny.forward-pad.safetensors", inp_d,
                     "STDiT batch B=n=2, latent 3x4x5 != input_size: W padded to 6 and output cropped, positions "
                     "recomputed for the 2x3 grid (a generalisation: OpenSora v1.0.0 itself cannot run it); "
                     "capture.* = input of every block linear")

    # ---------------- samplers: schedules ----------------
    sched = {}
    presets = [(240, 426, 51), (480, 854, 51), (720, 1280, 51), (720, 1280, 102)]
    doc_bf16 = {  # OPENSORA.md §9.2 table: first 6 ... last 4 (3 decimals)
        (240, 426, 51): [1000, 985.962, 971.352, 956.134, 940.271, 923.719, 271.454, 212.038, 147.479, 77.076],
        (480, 854, 51): [1000, 992.931, 985.468, 977.575, 969.216, 960.347, 426.997, 349.887, 257.048, 143.121],
        (720, 1280, 51): [1000, 995.266, 990.244, 984.906, 979.221, 973.154, 527.273, 446.154, 341.176, 200.0],
        (720, 1280, 102): [1000, 996.647, 993.080, 989.276, 985.213, 980.861, 611.940, 532.468, 422.680, 261.146],
    }
    print("sampler schedules:")
    ratios = {}
    for (h, w, f) in presets:
        key = f"rf.{h}x{w}x{f}"
        t32, dt32 = rf_timesteps(30, h, w, f, dtype=torch.float32)
        tbf, dtbf = rf_timesteps(30, h, w, f, dtype=torch.bfloat16)
        sched[f"{key}.timesteps"], sched[f"{key}.dt"] = t32, dt32
        sched[f"{key}.timesteps_bf16_ratio"], sched[f"{key}.dt_bf16_ratio"] = tbf, dtbf
        sched[f"{key}.model_timesteps_bf16"] = tbf.to(torch.bfloat16).to(torch.float32)
        ratios[key] = {"fp32": rf_ratio(h, w, f, torch.float32), "bf16": rf_ratio(h, w, f, torch.bfloat16)}
        got = [round(v, 3) for v in torch.cat([tbf[:6], tbf[-4:]]).tolist()]
        d = max(abs(a - b) for a, b in zip(got, doc_bf16[(h, w, f)]))
        check(f"{key} bf16-ratio schedule vs OPENSORA.md table, max|d|", d, d < 1.5e-3)
    t_plain, dt_plain = rf_timesteps(30, use_timestep_transform=False)
    sched["rf.no_transform.timesteps"], sched["rf.no_transform.dt"] = t_plain, dt_plain
    doc100 = [0, 10, 20, 30, 40, 50, 61, 71, 81, 91, 101, 111, 121, 131, 141, 151, 161, 172, 182, 192, 202, 212, 222,
              232, 242, 252, 262, 272, 283, 293, 303, 313, 323, 333, 343, 353, 363, 373, 383, 394, 404, 414, 424, 434,
              444, 454, 464, 474, 484, 494, 505, 515, 525, 535, 545, 555, 565, 575, 585, 595, 605, 616, 626, 636, 646,
              656, 666, 676, 686, 696, 706, 716, 727, 737, 747, 757, 767, 777, 787, 797, 807, 817, 827, 838, 848, 858,
              868, 878, 888, 898, 908, 918, 928, 938, 949, 959, 969, 979, 989, 999]
    for K in (100, 20, 5):
        lst = space_timesteps(1000, K)
        sched[f"iddpm.respaced{K}"] = torch.tensor(lst, dtype=torch.int64)
        diff = SpacedDiffusion(K)
        sched[f"iddpm.respaced{K}.betas"] = torch.from_numpy(diff.betas)
        sched[f"iddpm.respaced{K}.alphas_cumprod"] = torch.from_numpy(diff.alphas_cumprod)
    check("iddpm respaced100 == OPENSORA.md list", "equal" if space_timesteps(1000, 100) == doc100 else "differs",
          space_timesteps(1000, 100) == doc100)
    save("samplers.safetensors", sched, {
        "kind": "schedules",
        "description": "rf.<H>x<W>x<F>.timesteps/.dt: 30-step RF schedule with timestep transform, all fp32 "
                       "(height, width, num_frames fp32; the engine's schedule). *_bf16_ratio: the same with "
                       "bf16 height/width/num_frames as OpenSora's bf16 pipeline computes r (matches the "
                       "OPENSORA.md table); model_timesteps_bf16: what the bf16 model sees. iddpm.respacedK: kept "
                       "original timesteps (ascending) of space_timesteps(1000, K), with float64 respaced betas "
                       "and alphas_cumprod; K=20 is also the DDIM schedule ViDiT-Q uses",
        "rf_ratios": json.dumps(ratios),
    })

    # ---------------- samplers: trajectories ----------------
    # RF, 5 steps, stdit3-tiny, n = 1, CFG 7
    steps, cfg_scale = 5, 7.0
    hh, ww, nf = 32, 40, 51
    ts, dts = rf_timesteps(steps, hh, ww, nf, dtype=torch.float32)
    z0 = randn(1, 4, 3, 4, 5)
    yc = randn(1, 1, L, Cc, std=0.3)
    mask = torch.tensor([[1] * 6 + [0] * (L - 6)], dtype=torch.int64)
    kw = {"fps": torch.tensor([24.0]), "height": torch.tensor([float(hh)]), "width": torch.tensor([float(ww)])}
    r = rf_sample(m3, z0, ts, dts, cfg_scale, yc, mask, **kw)
    print(f"rf trajectory: t' {[round(v, 3) for v in ts.tolist()]}, max|z5| {r['z'][-1].abs().max():.3f}")
    save("stdit3-tiny.rf5.safetensors", {
        "z": r["z"], "v": r["v"], "model_out": r["model_out"], "timesteps": ts, "dt": dts,
        "y_cond": yc, "y": r["y"], "mask": mask, **kw, "num_frames": torch.tensor([float(nf)]),
    }, {
        "kind": "trajectory", "checkpoint": "stdit3-tiny", "sampler": "rflow", "num_sampling_steps": steps,
        "cfg_scale": cfg_scale, "use_timestep_transform": True, "tolerance": TOLERANCE,
        "description": "RF sampling, 5 steps, CFG 7.0, timestep transform with height 32, width 40, num_frames 51 "
                       "(fp32 ratio). z[0] = initial noise [n=1,4,3,4,5], z[i+1] = z[i] + v[i]*dt[i]; "
                       "model_out[i] = raw model output for [z;z] at timesteps[i] with y = [y_cond; y_embedding]; "
                       "v = guided velocity (first channel half)",
    })

    # IDDPM / DDIM, 5 steps, stdit-tiny, n = 1, CFG 7
    z0 = randn(1, 4, 3, 4, 6)
    yc = randn(1, 1, L, Cc, std=0.3)
    mask = torch.tensor([[1] * 8 + [0] * (L - 8)], dtype=torch.int64)
    noises = randn(steps, 2, 4, 3, 4, 6)
    for sampler, cch in (("iddpm", 3), ("iddpm", 4), ("ddim", 3)):
        r = iddpm_sample(m1, z0, noises, steps, cfg_scale, yc, mask, cfg_channel=cch, sampler=sampler)
        name = f"stdit-tiny.{sampler}5-cfgch{cch}.safetensors"
        print(f"{sampler} cfg_channel={cch}: timesteps {r['timesteps'].tolist()}, max|x5| {r['x'][-1].abs().max():.3f}")
        tens = {"x": r["x"], "model_out": r["model_out"], "guided": r["guided"], "timesteps": r["timesteps"],
                "y_cond": yc, "y": r["y"], "mask": mask}
        if sampler == "iddpm":
            tens["noise"] = noises
        save(name, tens, {
            "kind": "trajectory", "checkpoint": "stdit-tiny", "sampler": sampler, "num_sampling_steps": steps,
            "cfg_scale": cfg_scale, "cfg_channel": cch, "tolerance": TOLERANCE,
            "description": f"{sampler.upper()} {'learned-range ancestral' if sampler == 'iddpm' else 'eta=0'} sampling, "
                           f"5 respaced steps (space_timesteps(1000, 5)), CFG 7.0 on channels 0..{cch - 1}. x[0] = "
                           "[z; z] (2n = 2), x[i+1] after step i; the result is x[-1][:n]. Model called on "
                           "[x[i][:n]; x[i][:n]] at the original timestep timesteps[i]; model_out = raw output, "
                           "guided = after CFG. " + ("noise[i] is the N(0,1) draw of step i for the whole 2n batch "
                                                     "(unused at the last step, k = 0)" if sampler == "iddpm" else ""),
        })

    # ---------------- manifest ----------------
    MANIFEST["checks"] = CHECKS
    MANIFEST["configs"] = {"stdit3-tiny": STDIT3_CFG, "stdit-tiny": STDIT_CFG}
    MANIFEST["capture_layout"] = CAPTURE_LAYOUT
    total = 0
    for fn in sorted(os.listdir(OUT)):
        if fn != "manifest.json":
            total += os.path.getsize(os.path.join(OUT, fn))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(MANIFEST, f, indent=1, sort_keys=True)
        f.write("\n")
    total += os.path.getsize(os.path.join(OUT, "manifest.json"))
    for fn in sorted(os.listdir(OUT)):
        print(f"  {os.path.getsize(os.path.join(OUT, fn)):>9}  {fn}")
    print(f"total {total} bytes")
    if total >= 3_000_000:
        raise SystemExit("fixtures exceed 3 MB")


if __name__ == "__main__":
    main()
