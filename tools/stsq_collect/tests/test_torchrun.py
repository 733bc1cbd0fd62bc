"""Sharded calibration: a two-process `torchrun` (gloo, CPU) run equals the one-process run in every
range, histogram and row count, and its sampled rows are the in-process merge of the same shards."""
import os
import shutil
import subprocess
import sys

import numpy as np

from stsq_collect import cache
from stsq_collect.__main__ import main
from stsq_collect.checkpoint import open_checkpoint, schedule
from stsq_collect.collect import Calibration, collect, jobs, merge_shards

from conftest import DEMO

PROMPTS = ["a red circle moving left", "a blue square growing", "a green triangle moving up"]


def shared_args(tmp_path, directory):
    prompt_file = tmp_path / "prompts.txt"
    prompt_file.write_text("\n".join(PROMPTS) + "\n")
    return [str(DEMO), "--prompts", str(prompt_file), "--steps", "2", "--batch", "1", "--cache-directory", str(directory),
            "--modules", "reference", "--threads", "1", "--quiet"]


def test_two_processes_equal_one(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([torchrun, "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
                           "-m", "stsq_collect", *shared_args(tmp_path, tmp_path / "two")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert main(shared_args(tmp_path, tmp_path / "one")) == 0
    (folder,) = os.listdir(tmp_path / "one")
    assert os.listdir(tmp_path / "two") == [folder]
    _, one = cache.load_cache(str(tmp_path / "one" / folder))
    _, two = cache.load_cache(str(tmp_path / "two" / folder))

    # The same shards merged in this process: what rank 0 must have written.
    checkpoint = open_checkpoint(str(DEMO), modules="reference")
    y, mask = checkpoint.text_encoder.encode(PROMPTS)
    d = checkpoint.sampler
    size = [d.frames, d.height, d.width]
    ts, dt = schedule(2, d, size[0], size[1], size[2], True)
    calibration = Calibration(checkpoint, y, mask, ts, dt, d.cfg_scale, size, d.fps)
    job_list = jobs(len(PROMPTS), [0], 1, calibration.values_per_sample)
    shards = [collect(calibration, job_list, rank, 2, log=None) for rank in range(2)]
    merged = {layer: merge_shards(layer, [s.get(layer, {}) for s in shards]) for layer in sorted(set(shards[0]) | set(shards[1]))}

    assert sorted(one) == sorted(two) == sorted(merged)
    for layer in one:
        assert sorted(one[layer]) == sorted(two[layer]) == [0, 1]
        for step in one[layer]:
            a, b, m = one[layer][step], two[layer][step], merged[layer][step]
            assert a.rows == b.rows
            assert a.channel_min.tolist() == b.channel_min.tolist() and a.channel_max.tolist() == b.channel_max.tolist()
            assert a.minimum == b.minimum and a.maximum == b.maximum
            assert a.histogram.tolist() == b.histogram.tolist()
            assert b.reservoir.tolist() == m.reservoir.tolist()
            assert b.reservoir.shape == a.reservoir.shape
            # every merged row is one the one-process run could have sampled: inside its ranges
            assert np.all(b.reservoir >= a.channel_min) and np.all(b.reservoir <= a.channel_max)
