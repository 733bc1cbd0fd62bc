"""`python -m stsq_collect CHECKPOINT [options]` (or `stsq-collect`), one process or under
`torchrun --nproc_per_node N -m stsq_collect …`: records the calibration statistics of every block
linear per sampler step and writes them into the calibration cache `stsq-tui` reads."""
import argparse
import sys
import time


from . import cache
from .checkpoint import CheckpointError, open_checkpoint
from .launch import launch
from .collect import build_calibration, collect, gather, jobs, read_prompts
from .generators import fnv1a_file


def parse(argv):
    p = argparse.ArgumentParser(prog="stsq-collect", description=__doc__)
    p.add_argument("checkpoint", help="STDiT3 safetensors checkpoint (the demo model, or OpenSora v1.2 with --captions)")
    p.add_argument("--prompts", default="sample-prompts/calibration.txt", help="prompt list, one a line")
    p.add_argument("--seeds", default="0", help="comma-separated noise seeds")
    p.add_argument("--steps", type=int, help="sampler steps (default: the checkpoint's, else 30)")
    p.add_argument("--cfg", type=float, help="CFG scale (default: the checkpoint's, else 7)")
    p.add_argument("--captions", help="precomputed caption embeddings (safetensors: y [n,1,L,C], mask [n,L]) "
                   "for checkpoints without their own text encoder, e.g. OpenSora's T5 outputs")
    p.add_argument("--size", help="model-input size T,H,W (default: the checkpoint's sampler metadata, else 8,32,32)")
    p.add_argument("--cache-directory", default=None, help="cache folder (default: stsq-tui's, ~/.cache/stsq-tui/calibration)")
    p.add_argument("--batch", type=int, default=8, help="prompts per forward batch (stsq-tui uses 8; rows are sampled "
                   "in batch order, so only 8 gives stsq-tui's reservoir rows)")
    p.add_argument("--reservoir-rows", type=int, default=32, help="rows sampled per layer and step")
    p.add_argument("--modules", choices=["auto", "reference", "opensora"], default="auto",
                   help="OpenSora's own STDiT3 when installed (auto), or the project's reference modules")
    p.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK when CUDA is available, else cpu)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument("--checkpoint-hash", default=None, help="the checkpoint's FNV-1a, if already known (skips hashing it)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def main(argv=None):
    return launch(run, parse(sys.argv[1:] if argv is None else argv), (CheckpointError, OSError, ValueError))


def run(args, rank, world, device):
    start = time.monotonic()
    try:
        with open(args.prompts, encoding="utf-8") as f:
            prompts = read_prompts(f.read())
    except OSError as e:
        raise OSError(f"{args.prompts}: {e.strerror}") from e
    if not prompts:
        raise ValueError(f"{args.prompts}: no calibration prompts")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as e:
        raise ValueError(f"--seeds {args.seeds!r}: comma-separated non-negative integers") from e
    if any(s < 0 or s >= 1 << 64 for s in seeds):
        raise ValueError(f"--seeds {args.seeds!r}: seeds are 64-bit unsigned")
    checkpoint = open_checkpoint(args.checkpoint, modules=args.modules, device=device)
    calibration = build_calibration(checkpoint, prompts, args.captions, args.size, args.steps, args.cfg, device)
    steps, cfg = len(calibration.timesteps), float(calibration.cfg_scale)
    job_list = jobs(len(prompts), seeds, args.batch, calibration.values_per_sample)
    if rank == 0 and not args.quiet:
        print(f"{args.checkpoint}: {checkpoint.modules} STDiT3 modules on {device}; {len(prompts)} prompts × "
              f"{len(seeds)} seeds × {steps} steps, {len(job_list)} batches over {world} process(es)", file=sys.stderr)
    statistics = collect(calibration, job_list, rank, world, args.reservoir_rows, log=None if args.quiet else sys.stderr)
    if world > 1:
        statistics = gather(statistics, rank, world)
    if rank != 0:
        return 0
    checkpoint_hash = args.checkpoint_hash or fnv1a_file(args.checkpoint)
    key = cache.Key(checkpoint_hash, prompts, steps, cfg, seeds)
    directory = args.cache_directory or cache.default_directory()
    folder = cache.save_cache(statistics, key, directory)
    entries = sum(len(v) for v in statistics.values())
    print(f"calibration {key.digest}: {len(prompts)} prompts × {len(seeds)} seeds × {steps} steps, "
          f"{entries} layers × steps recorded in {time.monotonic() - start:.1f} s; saved to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
