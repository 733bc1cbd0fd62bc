"""Calibration on PyTorch: FP rectified-flow sampling over the calibration prompts with every block
linear's input recorded per sampler step — the same run as `stsq-tui calibrate`
(`Calibrator.swift`): prompts in batches of 8, per seed one noise generator continued across the
batches, the CFG batch `[cond; uncond]` in one forward pass (step 0 = noisiest), statistics keyed
by the state-dict name of the linear.

Under `torchrun` the (seed, batch) jobs are dealt round-robin over the ranks; each job runs exactly
as it would in one process (same batch, same noise, skipped ahead), so the merged ranges,
histograms and row counts equal the one-process run; rank 0 merges layer by layer and writes.
"""
import re
import sys
import time
import unicodedata

import numpy as np
import torch
import torch.nn as nn

from .generators import NoiseGenerator
from .statistics import LayerStepStatistics, stream_seed

BLOCK_PREFIXES = ("spatial_blocks.", "temporal_blocks.")


def read_prompts(text):
    """`CalibrationSetup.readPrompts`: one a line, trimmed of spaces and tabs, blank lines and
    `#` comments skipped."""
    def trim(s):
        is_space = lambda c: c == "\t" or unicodedata.category(c) == "Zs"   # noqa: E731
        start, end = 0, len(s)
        while start < end and is_space(s[start]):
            start += 1
        while end > start and is_space(s[end - 1]):
            end -= 1
        return s[start:end]
    # Swift splits on "\n" Characters, and "\r\n" is one Character: such a pair does not split.
    lines = [trim(line) for line in re.split(r"(?<!\r)\n", text)]
    return [line for line in lines if line and not line.startswith("#")]


# The linears outside the blocks that run on every token at every step (the engine's
# `VideoModel.outerLinears`): the patch embedding's input is recorded as its flattened patches.
OUTER_LINEARS = ("x_embedder.proj", "final_layer.linear")


def outer_linears(model):
    modules = dict(model.named_modules())
    return [(n, modules[n]) for n in OUTER_LINEARS if n in modules]


def patch_rows(x, kernel):
    """A Conv3d's padded input [B, C, T, H, W] with kernel = stride → its patches as rows
    [B·Tn·Hn·Wn, C·kt·kh·kw], tokens in (b, t, h, w) order, features in (c, kt, kh, kw) order."""
    B, C, T, H, W = x.shape
    pt, ph, pw = kernel
    return (x.reshape(B, C, T // pt, pt, H // ph, ph, W // pw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
             .reshape(-1, C * pt * ph * pw))


def block_linears(model):
    """(name, module) of every nn.Linear inside the transformer blocks, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(BLOCK_PREFIXES)]


class Recorder:
    """Forward pre-hooks on the block linears; `step` says which sampler step the next calls
    belong to (None: not recording)."""

    def __init__(self, model, capacity=32, rank=0):
        self.capacity = capacity
        # Rank 0 draws the engine's stream; other ranks another one each, so that shards with the
        # same row counts do not sample the same positions (the merge assumes independent samples).
        self.stream_offset = (rank * 0x9E37_79B9_7F4A_7C15) & ((1 << 64) - 1)
        self.step = None
        self.statistics = {}
        self.handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in block_linears(model)]
        if not self.handles:
            raise ValueError("the model has no block linears (spatial_blocks.* / temporal_blocks.*)")
        self.handles += [m.register_forward_pre_hook(self._hook(n, getattr(m, "kernel_size", None))) for n, m in outer_linears(model)]
        # q, k and v of every attention as its products see them (`<attention>.q/.k/.v`), where the
        # modules offer them (the reference modules; OpenSora's own do not, and a plan with integer
        # attention products then names the missing statistics).
        self.attentions = [(n, m) for n, m in model.named_modules() if n.startswith(BLOCK_PREFIXES) and hasattr(m, "operand_hook")]
        for n, m in self.attentions:
            m.operand_hook = self._operands(n)

    def _observe(self, name, x):
        steps = self.statistics.setdefault(name, {})
        s = steps.get(self.step)
        if s is None:
            seed = (stream_seed(name, self.step) + self.stream_offset) & ((1 << 64) - 1)
            s = steps[self.step] = LayerStepStatistics(x.shape[-1], self.capacity, seed=seed)
        s.observe(x)

    def _hook(self, name, kernel=None):
        def hook(module, args):
            if self.step is not None:
                self._observe(name, args[0] if kernel is None else patch_rows(args[0], kernel))
        return hook

    def _operands(self, attention):
        def hook(q, k, v):
            if self.step is not None:
                for operand, x in (("q", q), ("k", k), ("v", v)):
                    if x.shape[0] > 0:   # a batch without caption tokens has no keys (as the engine)
                        self._observe(f"{attention}.{operand}", x)
        return hook

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles = []
        for _, m in self.attentions:
            m.operand_hook = None
        self.attentions = []


class Job:
    """One calibration batch: prompts [start, start + count) sampled from noise seed `seed`, after
    `skip` values of that seed's generator."""

    def __init__(self, index, seed, start, count, skip):
        self.index, self.seed, self.start, self.count, self.skip = index, seed, start, count, skip


def jobs(prompt_count, seeds, batch, values_per_sample):
    """Every (seed, batch) of a calibration in the engine's order."""
    out = []
    for seed in seeds:
        skip = 0
        for start in range(0, prompt_count, batch):
            count = min(batch, prompt_count - start)
            out.append(Job(len(out), seed, start, count, skip))
            skip += count * values_per_sample
    return out


class Calibration:
    """What to sample: the checkpoint, the conditioning of every prompt, the schedule and size."""

    def __init__(self, checkpoint, y, mask, timesteps, dt, cfg_scale, size, fps, device="cpu"):
        self.checkpoint = checkpoint
        self.y, self.mask = y, mask
        self.timesteps, self.dt = timesteps, dt
        self.cfg_scale = np.float32(cfg_scale)
        self.size = list(size)
        self.fps = float(fps)
        self.device = torch.device(device)
        pixel_scale = 1 if checkpoint.in_channels == 3 else 8
        self.height = float(np.float32(size[1] * pixel_scale))
        self.width = float(np.float32(size[2] * pixel_scale))

    @property
    def values_per_sample(self):
        return self.checkpoint.in_channels * int(np.prod(self.size))

    @torch.no_grad()
    def run_job(self, job, recorder, progress=None):
        generator = NoiseGenerator(job.seed)
        generator.skip_gaussians(job.skip)
        cin = self.checkpoint.in_channels
        noise = generator.gaussian(job.count * self.values_per_sample).reshape([job.count, cin] + self.size)
        z = torch.from_numpy(noise).to(self.device)
        y_cond = self.y[job.start:job.start + job.count].to(self.device)
        mask = self.mask[job.start:job.start + job.count].to(self.device)
        n, L = job.count, y_cond.shape[2]
        null = self.checkpoint.null_caption[:L].to(self.device)
        y = torch.cat([y_cond, null[None, None].expand(n, 1, *null.shape)], dim=0)
        model = self.checkpoint.model
        kwargs = dict(fps=torch.tensor([self.fps], device=self.device),
                      height=torch.tensor([self.height], device=self.device),
                      width=torch.tensor([self.width], device=self.device))
        for i, t in enumerate(self.timesteps):
            recorder.step = i
            out = model(torch.cat([z, z], 0), torch.full((2 * n,), float(t), device=self.device), y, mask=mask, **kwargs)
            recorder.step = None
            pred = out[:, :cin].to(torch.float32)
            v_cond, v_uncond = pred[:n], pred[n:]
            v = v_uncond + float(self.cfg_scale) * (v_cond - v_uncond)
            z = z + v * float(self.dt[i])
            if progress:
                progress(job, i)
        return z


def build_calibration(checkpoint, prompts, captions=None, size=None, steps=None, cfg=None, device="cpu"):
    """The sampling run of `prompts` as the engine sets it up (`CalibrationSetup`): size, steps and
    CFG from the arguments, else the checkpoint's sampler metadata, else 8×32×32, 30, 7; captions
    from `captions` (a safetensors file) or the checkpoint's own text encoder."""
    from .checkpoint import CheckpointError, load_captions, schedule
    d = checkpoint.sampler
    size = [int(v) for v in size.split(",")] if size else [d.frames or 8, d.height or 32, d.width or 32]
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"--size {size!r}: three positive integers T,H,W")
    steps = steps or d.steps or 30
    if not 1 <= steps <= 10_000:
        raise ValueError(f"--steps {steps}: rectified flow needs 1…10000 steps")
    cfg = cfg if cfg is not None else (d.cfg_scale if d.cfg_scale is not None else 7.0)
    if captions:
        y, mask = load_captions(captions, len(prompts))
    elif checkpoint.text_encoder is not None:
        y, mask = checkpoint.text_encoder.encode(prompts)
    else:
        raise CheckpointError(f"{checkpoint.path} has no text encoder of its own: pass --captions with the T5 embeddings of the prompts")
    pixel_space = checkpoint.in_channels == 3
    scale = 1 if pixel_space else 8
    ts, dt = schedule(steps, d, size[0], size[1] * scale, size[2] * scale, pixel_space)
    return Calibration(checkpoint, y, mask, ts, dt, cfg, size, d.fps or 24, device=device)


def merge_shards(layer, shards):
    """Merges one layer's {step: statistics} from every rank, in rank order (deterministic)."""
    merged = {}
    rngs = {}
    for shard in shards:
        for step, s in sorted(shard.items()):
            if step not in merged:
                merged[step] = s
                continue
            rng = rngs.setdefault(step, np.random.default_rng(stream_seed(layer, step)))
            merged[step].merge(s, rng)
    return merged


def collect(calibration, job_list, rank=0, world=1, capacity=32, log=sys.stderr):
    """Runs this rank's share of `job_list`; returns {layer: {step: LayerStepStatistics}}."""
    model = calibration.checkpoint.model
    recorder = Recorder(model, capacity, rank)
    mine = [j for j in job_list if j.index % world == rank]
    steps = len(calibration.timesteps)
    start = time.monotonic()
    done = [0]

    def progress(job, i):
        done[0] += 1
        if log is not None and (i == steps - 1 or done[0] % 10 == 0):
            print(f"[rank {rank}] seed {job.seed} prompts {job.start + 1}–{job.start + job.count}: step {i + 1}/{steps} "
                  f"({done[0]}/{len(mine) * steps} steps, {time.monotonic() - start:.1f} s)", file=log, flush=True)
    try:
        for job in mine:
            calibration.run_job(job, recorder, progress)
    finally:
        recorder.close()
    return recorder.statistics


def gather(statistics, rank, world):
    """Under torch.distributed: every rank's statistics merged on rank 0, one layer at a time
    (the whole cache never sits in one message). Returns the merged dict on rank 0, None elsewhere."""
    import torch.distributed as dist
    names = [None] * world
    dist.all_gather_object(names, sorted(statistics))
    layers = sorted(set(n for part in names for n in part))
    merged = {} if rank == 0 else None
    for layer in layers:
        shards = [None] * world if rank == 0 else None
        dist.gather_object(statistics.get(layer, {}), shards, dst=0)
        if rank == 0:
            merged[layer] = merge_shards(layer, shards)
    return merged
