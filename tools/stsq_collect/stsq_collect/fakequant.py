"""A quantized export (`stsq-tui quantize/export`: `quantized.safetensors`) applied to the PyTorch
model as fake-quant with per-step scales, so quantized videos can be sampled where the GPUs are and
scored with the metrics of the field.

Every block linear the export quantizes is replaced by `FakeQuantLinear`, which at sampler step s
(weight set g = `step_group[s]`):

1. brings its input into the product's domain the way the export folds it — `(x − z_s)/s_g` for
   `attn.qkv`/`mlp.fc1` (folded into the modulation table there) and `cross_attn.kv_linear`
   (folded into the caption projection); `x·(1/s)` (`input_multiplier`) for the explicit layers;
   nothing for `attn.proj`/`cross_attn.proj`, whose `1/s` is in the V rows of the exported weights;
2. quantizes and dequantizes it: `q = clamp(rne(x/Δ) + z, qmin, qmax)`, `(q − z)·Δ` with the step's
   static encoding, or per token (`covering` each row) for dynamic layers;
3. multiplies by the dequantized weight set `(c − zw)·Δw`, adds the folded bias and, with a
   channel shift, the step's `bias_shift`.

So the folds are applied unfolded (the same numbers up to float32 rounding), which works on
OpenSora's own modules as on the reference ones: nothing but the block linears is touched.
"""
import json
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open

from .collect import block_linears
from .generators import fnv1a

FORMATS = ("stsq-quantized/5", "stsq-quantized/6")


class ExportError(Exception):
    pass


def fold_of(name):
    """`SmoothQuant.fold(of:)`: modulation, value_rows, caption or explicit."""
    tail = name.split(".", 2)[2] if name.count(".") >= 2 else name
    if tail in ("attn.qkv", "mlp.fc1"):
        return "modulation"
    if tail in ("attn.proj", "cross_attn.proj"):
        return "value_rows"
    if tail == "cross_attn.kv_linear":
        return "caption"
    return "explicit"


def _unpack_int4(packed, inputs):
    """U8 [C, ⌈K/2⌉], two signed 4-bit codes a byte, the even input channel in the low nibble."""
    p = packed.to(torch.int16)
    low, high = p & 0xF, (p >> 4) & 0xF
    codes = torch.stack([low, high], dim=-1).reshape(p.shape[0], -1)[:, :inputs]
    return torch.where(codes >= 8, codes - 16, codes).to(torch.int32)


def covering(lo, hi, kind):
    """`ActivationEncoding.covering` per row: (scale, zero point) float32 tensors."""
    tiny = torch.finfo(torch.float32).tiny * torch.finfo(torch.float32).eps   # leastNonzeroMagnitude
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    if kind == "int8":
        m = torch.maximum(-lo, hi)
        scale = torch.where(m > 0, torch.clamp(m / 127.0, min=tiny), torch.ones_like(m))
        return scale, torch.zeros_like(scale)
    span = hi - lo
    scale = torch.where(span > 0, torch.clamp(span / 255.0, min=tiny), torch.ones_like(span))
    ratio = -lo / scale   # ≥ 0
    whole = torch.floor(ratio)
    zero = torch.clamp(whole + (ratio - whole >= 0.5).to(ratio.dtype), 0, 255)   # half away from zero, exactly
    return scale, zero


def fake_quantize(x, scale, zero, qmin, qmax):
    """`ActivationEncoding.fakeQuantize`: float32 division, round half to even, clamp, dequantize."""
    if not torch.is_tensor(scale):
        # A tensor divisor: CUDA turns division by a Python scalar into x·(1/Δ).
        scale = torch.tensor(scale, dtype=torch.float32, device=x.device)
    q = torch.clamp(torch.round(x / scale) + zero, qmin, qmax)
    return (q - zero) * scale


class StepHolder:
    """The sampler step the next forward pass belongs to (set by the sampling loop)."""
    step = None


class FakeQuantLinear(nn.Module):
    def __init__(self, name, layer, step_group, holder):
        super().__init__()
        self.name, self.layer, self.step_group, self.holder = name, layer, step_group, holder
        self.fold = fold_of(name)
        # Graph export: static layers through torch's fake-quantize ops, which export as ONNX
        # QuantizeLinear/DequantizeLinear (see onnx_export.py); the same values as the eager path
        # up to x·(1/Δ) in place of x/Δ.
        self.qdq = False
        # Buffers, not plain tensors: a traced graph keeps them as initializers, so the weights'
        # QuantizeLinear/DequantizeLinear are not folded away into float constants.
        for g, w in enumerate(layer["sets"]):
            self.register_buffer(f"weight{g}", w["weight"], persistent=False)
            if w["codes"] is not None:
                self.register_buffer(f"weight_scale{g}", w["scales"], persistent=False)
                self.register_buffer(f"weight_zero_point{g}", w["zero_points"], persistent=False)

    def forward(self, x):
        s = self.holder.step
        if s is None:
            raise ExportError(f"{self.name}: sampled outside a sampler step (the export holds per-step scales)")
        L = self.layer
        g = self.step_group[s] if len(L["sets"]) > 1 else 0
        w = L["sets"][g]
        x = x.to(torch.float32)
        if self.fold in ("modulation", "caption"):
            if L["channel_shift"] is not None:
                x = x - L["channel_shift"][s]
            if w["smoothing"] is not None:
                x = x / w["smoothing"]
        if w["input_multiplier"] is not None:
            x = x * w["input_multiplier"]
        weight = getattr(self, f"weight{g}")
        if self.qdq and w["codes"] is not None:
            weight = torch.fake_quantize_per_channel_affine(weight, getattr(self, f"weight_scale{g}"),
                                                            getattr(self, f"weight_zero_point{g}"), 0, -128, 127)
        if L["kind"] is not None:
            if L["act_scale"] is not None and self.qdq:
                scale, zero = L["act_scale"][s], int(L["act_zero"][s])
                if L["kind"] == "int8":   # ONNX's int8 is −128…127, ours stops at −127
                    x = torch.clamp(x, -127 * scale, 127 * scale)
                x = torch.fake_quantize_per_tensor_affine(x, scale, zero, -128 if L["kind"] == "int8" else 0,
                                                          127 if L["kind"] == "int8" else 255)
            elif L["act_scale"] is not None:
                x = fake_quantize(x, L["act_scale"][s], L["act_zero"][s], L["qmin"], L["qmax"])
            else:
                lo = torch.clamp(x.amin(dim=-1, keepdim=True), max=0.0)
                hi = torch.clamp(x.amax(dim=-1, keepdim=True), min=0.0)
                scale, zero = covering(lo, hi, L["kind"])
                x = fake_quantize(x, scale, zero, L["qmin"], L["qmax"])
        y = F.linear(x, weight, w["bias"])
        if L["bias_shift"] is not None:
            y = y + L["bias_shift"][s]
        return y


def load_export(folder, widths, device="cpu"):
    """Reads `folder/quantized.safetensors` for a model whose block linears take `widths`
    {name: K} inputs: (step_group list, {layer: dict})."""
    path = os.path.join(folder, "quantized.safetensors")
    if not os.path.isfile(path):
        raise ExportError(f"{path}: no such file (export the plan with `stsq-tui quantize --out` or `export`)")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            names = set(f.keys())
            t = {n: f.get_tensor(n) for n in names}
    except Exception as e:   # safetensors' own error types
        raise ExportError(f"{path}: not a readable safetensors file ({e})") from e
    if meta.get("format") not in FORMATS:
        raise ExportError(f"{path}: format {meta.get('format')!r}; this reader takes {', '.join(FORMATS)} (re-export with this stsq-tui)")
    rotated = sorted(n[:-len(".hadamard_block")] for n in names if n.endswith(".hadamard_block"))
    if rotated:
        raise ExportError(f"{path}: {rotated[0]} rotates its input online (hadamard_block); this PyTorch reference "
                          "does not — export a plan without rotation")
    integer_attention = sorted(n[:-len(".q_scale")] for n in names if n.endswith(".q_scale"))
    if integer_attention:
        raise ExportError(f"{path}: {integer_attention[0]} runs its attention products on integers (q_scale, k_scale, "
                          "v_scale, p_scale); this PyTorch reference quantizes block linears only — export a plan "
                          "without attention_products")
    plan_path = os.path.join(folder, "plan.json")
    try:
        with open(plan_path, "rb") as f:
            plan_bytes = f.read()
    except OSError as e:
        raise ExportError(f"{plan_path}: {e.strerror} (the export's plan)") from e
    if "%016x" % fnv1a(plan_bytes) != meta.get("plan_fnv1a"):
        raise ExportError(f"{plan_path} is not the plan {path} was built from (plan_fnv1a {meta.get('plan_fnv1a')})")
    if "step_group" not in names:
        raise ExportError(f"{path}: tensor 'step_group' is missing")
    step_group = [int(v) for v in t["step_group"].tolist()]
    layers = {}
    weight_set = re.compile(r"^(.*)\.w0\.weight$")
    prefixes = sorted({m.group(1) for m in map(weight_set.match, names) if m and not m.group(1).endswith(".caption_projection")}
                      | {n[: -len(".act_range")] for n in names if n.endswith(".act_range")})
    outer = [n for n in prefixes if n in ("x_embedder.proj", "final_layer.linear")]
    if outer:
        raise ExportError(f"{path}: {outer[0]} is quantized; this PyTorch reference quantizes block linears only — "
                          "export a plan that keeps it in float")
    for name in prefixes:
        sets = []
        g = 0
        while f"{name}.w{g}.weight" in names:
            p = f"{name}.w{g}"
            raw = t[p + ".weight"]
            codes = scale = zero = None
            if raw.dtype == torch.float32:
                weight = raw
            else:
                scale = t[p + ".weight_scale"].to(torch.float32)
                if raw.dtype == torch.uint8:
                    if name not in widths:
                        raise ExportError(f"{path}: {name} is not a block linear of this model")
                    codes = _unpack_int4(raw, widths[name])
                else:
                    codes = raw.to(torch.int32)
                zero = t.get(p + ".weight_zero_point")
                zero = zero.to(torch.int32) if zero is not None else torch.zeros(codes.shape[0], dtype=torch.int32)
                weight = (codes - zero[:, None]).to(torch.float32) * scale[:, None]
            sets.append({"weight": weight.to(device), "bias": t.get(p + ".bias", None),
                         "codes": codes, "scales": scale, "zero_points": zero,
                         "smoothing": t.get(p + ".smoothing"), "input_multiplier": t.get(p + ".input_multiplier")})
            for key in ("bias", "smoothing", "input_multiplier"):
                if sets[-1][key] is not None:
                    sets[-1][key] = sets[-1][key].to(torch.float32).to(device)
            g += 1
        if not sets:
            raise ExportError(f"{path}: {name} has an activation range but no weight set w0")
        act_range = t.get(name + ".act_range")
        kind = None
        if act_range is not None:
            kind = "int8" if int(act_range[0]) < 0 else "uint8"
        if f"{name}.bias_shift" in names and f"{name}.channel_shift" not in names:
            raise ExportError(f"{path}: {name}.bias_shift without {name}.channel_shift")
        for suffix in (".act_scale", ".act_zero_point", ".bias_shift", ".channel_shift"):
            if name + suffix in names and t[name + suffix].shape[0] != len(step_group):
                raise ExportError(f"{path}: tensor '{name}{suffix}' has {t[name + suffix].shape[0]} steps, 'step_group' {len(step_group)}")
        if (name + ".act_scale" in names) != (name + ".act_zero_point" in names) or (name + ".act_scale" in names and act_range is None):
            raise ExportError(f"{path}: {name} needs act_scale, act_zero_point and act_range together")
        layers[name] = {
            "sets": sets, "kind": kind,
            "qmin": float(act_range[0]) if act_range is not None else None,
            "qmax": float(act_range[1]) if act_range is not None else None,
            "act_scale": [float(v) for v in t[name + ".act_scale"].tolist()] if name + ".act_scale" in names else None,
            "act_zero": [float(v) for v in t[name + ".act_zero_point"].tolist()] if name + ".act_zero_point" in names else None,
            "bias_shift": t[name + ".bias_shift"].to(torch.float32).to(device) if name + ".bias_shift" in names else None,
            "channel_shift": t[name + ".channel_shift"].to(torch.float32).to(device) if name + ".channel_shift" in names else None,
        }
    return step_group, layers


def apply_export(model, folder, device="cpu"):
    """Replaces the block linears `folder`'s export quantizes; returns the StepHolder to set."""
    found = dict(block_linears(model))
    step_group, layers = load_export(folder, {n: m.in_features for n, m in found.items()}, device)
    holder = StepHolder()
    for name, layer in layers.items():
        module = found.get(name)
        if module is None:
            raise ExportError(f"{folder}: the export names {name}, which is not a block linear of this model")
        if tuple(layer["sets"][0]["weight"].shape) != tuple(module.weight.shape):
            raise ExportError(f"{folder}: {name} has weights {list(layer['sets'][0]['weight'].shape)}, the model {list(module.weight.shape)}")
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, FakeQuantLinear(name, layer, step_group, holder))
    holder.steps = len(step_group)
    holder.step_group = step_group
    return holder


def export_plan(folder):
    """The export's `plan.json` (its `sampler.t`, `checkpoint.hash`), or ExportError naming it."""
    path = os.path.join(folder, "plan.json")
    try:
        with open(path) as f:
            plan = json.load(f)
        plan["sampler"]["t"], plan["checkpoint"]["hash"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{path}: not a readable plan with sampler.t and checkpoint.hash ({e})") from e
    return plan
