"""`python -m stsq_collect.onnx_export CHECKPOINT --quantized DIR --out OUT`: the STDiT3 graph as
ONNX QDQ models, one per distinct static configuration of the export (per sampler step with
per-step scales), for NPU toolchains that read QDQ graphs.

- Exported from the reference modules (`torch.onnx.export`, TorchScript exporter, opset 17) with
  the quantized export applied (`fakequant.apply_export` in QDQ mode): every static activation
  is QuantizeLinear → DequantizeLinear with the step's scale and zero point (int8: a Clip to
  ±127·Δ first, as our codes stop at −127 and ONNX's int8 at −128), every quantized weight
  float → QuantizeLinear → DequantizeLinear per output channel (axis 0) — on its grid, so the
  codes come back exactly. The SmoothQuant folds are in the weights; `(x − z)/s` and the explicit
  `x·(1/s)` are ops in front of the quantizers.
- Fixed shapes: one CFG pair (batch 2: conditional, then null caption) at the checkpoint's size,
  the caption padded to the model's length with a mask input; inputs `x` [2, C, T, H, W],
  `timestep` [2], `y` [2, 1, L, Cc], `mask` [1, L] (int64); output `out`.
- The models share one weight file (`weights.bin`, ONNX external data): an initializer with the
  same bytes in several step models is stored once.
- Rounding: ONNX QuantizeLinear rounds half to even, as our activation codes do; ONNX Runtime may
  compute x·(1/Δ) rather than x/Δ, which moves a value lying within an ulp of a rounding
  boundary to the next code.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

import torch
import torch.nn as nn

from .cache import replace_folder
from .checkpoint import CheckpointError, open_checkpoint
from .fakequant import ExportError, FakeQuantLinear, apply_export, export_plan


class _Graph(nn.Module):
    """forward(x, timestep, y, mask) with fps, height and width fixed (they shape the graph)."""

    def __init__(self, model, fps, height, width):
        super().__init__()
        self.model = model
        self.fps, self.height, self.width = fps, height, width

    def forward(self, x, timestep, y, mask):
        return self.model(x, timestep, y, mask, fps=torch.tensor([self.fps]), height=torch.tensor([self.height]),
                          width=torch.tensor([self.width]))


def example_inputs(checkpoint, size, length=None):
    cin, cc = checkpoint.in_channels, int(checkpoint.config["caption_channels"])
    L = length or int(checkpoint.config["model_max_length"])
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, L, dtype=torch.int64)
    mask[0, : max(1, L // 2)] = 1
    return (torch.randn(2, cin, *size, generator=g), torch.full((2,), 500.0),
            torch.randn(2, 1, L, cc, generator=g), mask)


def _scope(layer):
    """The exporter's node scope of a block linear: `spatial_blocks.0.attn.qkv` → `/model/spatial_blocks.0/attn/qkv/`."""
    parts = layer.split(".")
    return "/model/" + ".".join(parts[:2]) + "/" + "/".join(parts[2:]) + "/"


def _constants_to_initializers(model, smallest=1024):
    """The exporter writes folded weights as Constant nodes: make the large ones initializers."""
    keep = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value" \
                and len(node.attribute[0].t.raw_data) >= smallest:
            tensor = node.attribute[0].t
            tensor.name = node.output[0]
            model.graph.initializer.append(tensor)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _insert_weight_qdq(model, modules, step):
    """Puts QuantizeLinear → DequantizeLinear per output channel on every quantized weight
    initializer (the exporter folds torch's fake-quantize of a constant weight into the constant;
    the weight being on its grid, the codes come back exactly). Returns the count."""
    from onnx import helper, numpy_helper
    inits = {t.name for t in model.graph.initializer}
    added = 0
    for m in modules:
        w = m.layer["sets"][m.step_group[step] if len(m.layer["sets"]) > 1 else 0]
        if w["codes"] is None:
            continue
        scope = _scope(m.name)
        products = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.name.startswith(scope)
                    and n.input[1] in inits]
        if len(products) != 1:
            raise ValueError(f"{m.name}: expected one MatMul/Gemm with a weight initializer in {scope}, found {len(products)}")
        node = products[0]
        trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
        axis = 0 if node.op_type == "Gemm" and trans_b else 1   # MatMul's weight is [K, C]
        scale, zero = scope + "weight_scale", scope + "weight_zero_point"
        model.graph.initializer.extend([numpy_helper.from_array(w["scales"].numpy(), scale),
                                        numpy_helper.from_array(w["zero_points"].numpy().astype("int8"), zero)])
        weight = node.input[1]
        q = helper.make_node("QuantizeLinear", [weight, scale, zero], [scope + "weight_q"], name=scope + "WeightQuantizeLinear", axis=axis)
        dq = helper.make_node("DequantizeLinear", [scope + "weight_q", scale, zero], [scope + "weight_dq"],
                              name=scope + "WeightDequantizeLinear", axis=axis)
        node.input[1] = scope + "weight_dq"
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position, dq)
        model.graph.node.insert(position, q)
        added += 1
    return added


def _share_weights(models, folder, name="weights.bin"):
    """Moves every initializer of `models` (onnx ModelProto) into one external file, each distinct
    byte string stored once; returns the file's size."""
    from onnx import external_data_helper
    offsets = {}
    with open(os.path.join(folder, name), "wb") as f:
        for model in models:
            for tensor in model.graph.initializer:
                data = tensor.raw_data
                if len(data) < 1024:
                    continue   # scales, zero points and small constants stay in the model
                key = hashlib.sha256(data).digest()
                if key not in offsets:
                    offsets[key] = f.tell()
                    f.write(data)
                    f.write(b"\0" * (-f.tell() % 64))
                external_data_helper.set_external_data(tensor, location=name, offset=offsets[key], length=len(data))
                tensor.ClearField("raw_data")
                tensor.data_location = 1   # EXTERNAL
        return f.tell()


def export(checkpoint_path, quantized, out, size=None):
    """Writes `out/step_<s>.onnx` per distinct configuration, `out/weights.bin`, `out/index.json`,
    into a temporary folder beside `out` that then replaces `out` whole (a failed export leaves
    the previous one as it was, and no file of an earlier, longer export stays behind)."""
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.abspath(out)) + ".tmp-", dir=parent)
    try:
        index = _export(checkpoint_path, quantized, work, size)
        replace_folder(out, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return index


def _export(checkpoint_path, quantized, out, size):
    import onnx
    checkpoint = open_checkpoint(checkpoint_path, modules="reference")
    checkpoint.model.dense_captions = True
    holder = apply_export(checkpoint.model, quantized)
    for m in checkpoint.model.modules():
        if isinstance(m, FakeQuantLinear):
            m.qdq = True
    d = checkpoint.sampler
    size = size or [d.frames or 8, d.height or 32, d.width or 32]
    scale = 1 if checkpoint.in_channels == 3 else 8
    graph = _Graph(checkpoint.model, float(d.fps or 24), float(size[1] * scale), float(size[2] * scale)).eval()
    inputs = example_inputs(checkpoint, size)
    timesteps = export_plan(quantized)["sampler"]["t"]
    models, files, file_of_step = [], {}, []
    for step in range(holder.steps):
        holder.step = step
        # Steps with the same scales everywhere and the same weight set share a model.
        signature = tuple(m.layer["act_scale"][step] if m.layer["act_scale"] else None
                          for m in checkpoint.model.modules() if isinstance(m, FakeQuantLinear)) + (holder.step_group[step],)
        if signature in files:
            file_of_step.append(files[signature])
            continue
        path = os.path.join(out, f"step_{step:02d}.onnx")
        with torch.no_grad():
            torch.onnx.export(graph, inputs, path, opset_version=17, dynamo=False, do_constant_folding=True,
                              input_names=["x", "timestep", "y", "mask"], output_names=["out"])
        model = onnx.load(path)
        _constants_to_initializers(model)
        _insert_weight_qdq(model, [m for m in checkpoint.model.modules() if isinstance(m, FakeQuantLinear)], step)
        models.append((path, model))
        files[signature] = os.path.basename(path)
        file_of_step.append(files[signature])
    holder.step = None
    shared = _share_weights([m for _, m in models], out)
    for path, model in models:
        onnx.save_model(model, path)
    index = {"format": "stsq-onnx-qdq/1", "opset": 17, "inputs": {"x": list(inputs[0].shape), "timestep": [2],
                                                                   "y": list(inputs[2].shape), "mask": list(inputs[3].shape)},
             "weights": "weights.bin", "weights_bytes": shared,
             "steps": [{"step": s, "t": timesteps[s], "weight_set": holder.step_group[s], "model": file_of_step[s]}
                       for s in range(holder.steps)]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=2)
    return index


def main(argv=None):
    p = argparse.ArgumentParser(prog="stsq-onnx", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--quantized", required=True, help="folder of a quantized export (plan.json + quantized.safetensors)")
    p.add_argument("--out", required=True)
    p.add_argument("--size", help="model-input size T,H,W (default: the checkpoint's sampler metadata)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        index = export(args.checkpoint, args.quantized, args.out, [int(v) for v in args.size.split(",")] if args.size else None)
    except (CheckpointError, ExportError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    models = sorted({s["model"] for s in index["steps"]})
    print(f"{len(models)} ONNX QDQ models for {len(index['steps'])} steps, {index['weights_bytes']:,} bytes of shared weights → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
