"""One process or one `torchrun` rank: the environment torchrun sets, the device, the process
group (NCCL on GPUs, gloo on CPU), errors as one line."""
import os
import sys

import torch


def launch(run, args, errors):
    """Calls `run(args, rank, world, device)`; an exception of the `errors` types prints
    `error: …` and returns 1. The process group is set up and torn down around it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or (f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    # The engine computes in float32: no TF32 in cuDNN convolutions or CUDA matmuls (cuDNN's is on
    # by default and would move every recorded range by ~1e-3).
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if world > 1:
        import torch.distributed as dist
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    try:
        return run(args, rank, world, device)
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if world > 1:
            import torch.distributed as dist
            dist.destroy_process_group()
