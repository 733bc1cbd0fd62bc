"""`python -m stsq_collect.sample CHECKPOINT --quantized DIR --prompts FILE --out videos.safetensors`
(also under `torchrun`): samples the quantized export as fake-quant on PyTorch with the engine's
rectified flow and noise — the same videos `stsq-tui sample --quantized DIR --fake-quant` gives, for
scoring at scale with the field's metrics (CLIP score, VBench, DOVER) where the GPUs are.
Without --quantized: the FP model."""
import argparse
import os
import sys
import time

import torch
from safetensors.torch import save_file

from .checkpoint import CheckpointError, open_checkpoint
from .launch import launch
from .collect import build_calibration, jobs, read_prompts
from .fakequant import ExportError, StepHolder, apply_export, export_plan
from .generators import fnv1a_file


def parse(argv):
    p = argparse.ArgumentParser(prog="stsq-sample", description=__doc__)
    p.add_argument("checkpoint")
    p.add_argument("--quantized", help="folder of a quantized export (plan.json + quantized.safetensors)")
    p.add_argument("--prompts", required=True, help="prompt list, one a line")
    p.add_argument("--captions", help="precomputed caption embeddings (y [n,1,L,C], mask [n,L]) for checkpoints without a text encoder")
    p.add_argument("--seed", type=int, default=0, help="noise seed (the engine's PCG32 + Box–Muller)")
    p.add_argument("--steps", type=int, help="sampler steps (default: the export's plan, else the checkpoint's)")
    p.add_argument("--cfg", type=float, help="CFG scale (default: the checkpoint's, else 7)")
    p.add_argument("--size", help="model-input size T,H,W (default: the checkpoint's sampler metadata)")
    p.add_argument("--batch", type=int, default=8, help="prompts per forward batch")
    p.add_argument("--modules", choices=["auto", "reference", "opensora"], default="auto")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--checkpoint-hash", default=None, help="the checkpoint's FNV-1a, if already known (skips hashing it)")
    p.add_argument("--out", required=True, help="output safetensors: 'samples' [n, C, T, H, W]")
    return p.parse_args(argv)


def main(argv=None):
    return launch(run, parse(sys.argv[1:] if argv is None else argv), (CheckpointError, ExportError, OSError, ValueError))


def run(args, rank, world, device):
    start = time.monotonic()
    with open(args.prompts, encoding="utf-8") as f:
        prompts = read_prompts(f.read())
    if not prompts:
        raise ValueError(f"{args.prompts}: no prompts")
    checkpoint = open_checkpoint(args.checkpoint, modules=args.modules, device=device)
    holder = apply_export(checkpoint.model, args.quantized, device) if args.quantized else StepHolder()
    plan = export_plan(args.quantized) if args.quantized else None
    steps = args.steps or (len(plan["sampler"]["t"]) if plan else None)
    if args.quantized and steps != holder.steps:
        raise ValueError(f"{args.quantized} holds {holder.steps} steps, --steps asks for {steps}")
    calibration = build_calibration(checkpoint, prompts, args.captions, args.size, steps, args.cfg, device)
    steps = len(calibration.timesteps)
    if args.quantized:
        # The export's per-step scales and tables belong to its plan's timesteps and checkpoint.
        planned = plan["sampler"]["t"]
        if any(abs(a - float(b)) > 1e-3 * max(1.0, abs(float(b))) for a, b in zip(planned, calibration.timesteps)):
            raise ValueError(f"{args.quantized}/plan.json: sampler.t {planned[:3]}… does not match this run's timesteps "
                             f"{[round(float(v), 1) for v in calibration.timesteps[:3]]}… (size or transform differ): the export was made for another schedule")
        digest = args.checkpoint_hash or fnv1a_file(args.checkpoint)
        if digest != plan["checkpoint"]["hash"]:
            raise ValueError(f"{args.quantized}/plan.json: checkpoint.hash is {plan['checkpoint']['hash']} but {args.checkpoint} hashes to {digest}")
    job_list = jobs(len(prompts), [args.seed], args.batch, calibration.values_per_sample)
    videos = {job.index: calibration.run_job(job, holder).cpu() for job in job_list if job.index % world == rank}
    if world > 1:
        import torch.distributed as dist
        parts = [None] * world if rank == 0 else None
        dist.gather_object(videos, parts, dst=0)
        if rank == 0:
            videos = {k: v for part in parts for k, v in part.items()}
    if rank != 0:
        return 0
    samples = torch.cat([videos[j.index] for j in job_list]).contiguous()
    if not torch.isfinite(samples).all():
        raise ValueError("the sampled videos hold NaN or ±Inf")
    temporary = f"{args.out}.tmp-{os.getpid()}"
    save_file({"samples": samples}, temporary, metadata={"checkpoint": args.checkpoint, "sampler": "rflow", "seed": str(args.seed),
                                                          "quantized": args.quantized or "", "mode": "fake-quant" if args.quantized else "fp32"})
    os.replace(temporary, args.out)   # whole or not at all
    print(f"sampled {len(prompts)} video(s) × {steps} steps in {time.monotonic() - start:.1f} s → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
