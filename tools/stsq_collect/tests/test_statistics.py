"""The statistics against scalar references of the Swift engine's definitions."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from stsq_collect.generators import Xorshift64Star
from stsq_collect.statistics import BIN_COUNT, LayerStepStatistics, histogram_bins, stream_seed


def reference_bin(v):
    """0 for zero, 1 + ⌊8·(log2|x| + 24)⌋ clamped, the last bin for 2¹⁶ and above and NaN
    (exact in Fractions: the thresholds are irrational, so compare a^8 against 2^k)."""
    a = abs(v)
    if a == 0:
        return 0
    if math.isnan(a) or a >= 2.0 ** 16:
        return BIN_COUNT - 1
    if a < 2.0 ** -24:
        return 1
    e = math.floor(math.log2(a))
    while 2.0 ** e > a:
        e -= 1
    while 2.0 ** (e + 1) <= a:
        e += 1
    m = Fraction(a) / 2 ** e   # in [1, 2), exact
    sub = sum(1 for k in range(1, 8) if m ** 8 >= 2 ** k)   # m ≥ 2^(k/8)
    return 1 + (e + 24) * 8 + sub


def test_bins_match_the_definition_on_edges_and_random_values():
    edges = []
    for e in (-26, -24, -1, 0, 3, 15, 16):
        for k in range(8):
            t = np.float32(2.0 ** (e + k / 8))
            edges += [t, np.nextafter(t, np.float32(0)), np.nextafter(t, np.float32(np.inf))]
    rng = np.random.default_rng(0)
    values = np.concatenate([np.array(edges, dtype=np.float32), (rng.standard_normal(4000) * 10.0 ** rng.uniform(-9, 6, 4000)).astype(np.float32),
                             np.array([0.0, -0.0, 1e-45, np.inf, -np.inf, np.nan, 65536.0, -65535.99], dtype=np.float32)])
    got = histogram_bins(torch.from_numpy(values)).tolist()
    assert got == [reference_bin(float(v)) for v in values]


def reference_observe(stats, x):
    """`LayerStepStatistics.observe` row by row (Algorithm R with the engine's generator)."""
    for row in x:
        for k, v in enumerate(row):
            stats["cmin"][k] = min(stats["cmin"][k], v)
            stats["cmax"][k] = max(stats["cmax"][k], v)
        stats["rows"] += 1
        if len(stats["res"]) < stats["cap"]:
            stats["res"].append(list(row))
        else:
            slot = stats["rng"].next() % stats["rows"]
            if slot < stats["cap"]:
                stats["res"][slot] = list(row)


def test_observe_equals_the_row_by_row_reference():
    rng = np.random.default_rng(1)
    width, cap = 5, 7
    s = LayerStepStatistics(width, cap, seed=stream_seed("spatial_blocks.0.attn.qkv", 3))
    ref = {"cmin": [np.inf] * width, "cmax": [-np.inf] * width, "rows": 0, "res": [], "cap": cap,
           "rng": Xorshift64Star(stream_seed("spatial_blocks.0.attn.qkv", 3))}
    hist = np.zeros(BIN_COUNT, dtype=np.uint64)
    for n in (3, 2, 1, 40, 0, 500, 9):
        x = rng.standard_normal((n, width)).astype(np.float32) * 3
        s.observe(torch.from_numpy(x))
        reference_observe(ref, x)
        for v in x.reshape(-1):
            hist[reference_bin(float(v))] += 1
    assert s.rows == ref["rows"] == 555
    assert s.channel_min.tolist() == ref["cmin"] and s.channel_max.tolist() == ref["cmax"]
    assert s.minimum == min(ref["cmin"]) and s.maximum == max(ref["cmax"])
    assert s.histogram.tolist() == hist.tolist()
    assert s.reservoir.tolist() == np.array(ref["res"], dtype=np.float32).tolist()


def test_merge_is_exact_for_ranges_and_samples_rows_of_the_shards():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((900, 4)).astype(np.float32)
    whole = LayerStepStatistics(4, 16)
    whole.observe(torch.from_numpy(x))
    a, b = LayerStepStatistics(4, 16, seed=1), LayerStepStatistics(4, 16, seed=2)
    a.observe(torch.from_numpy(x[:300]))
    b.observe(torch.from_numpy(x[300:]))
    pool = {tuple(r) for r in np.concatenate([a.reservoir, b.reservoir]).tolist()}
    a.merge(b, np.random.default_rng(0))
    assert a.rows == whole.rows and a.histogram.tolist() == whole.histogram.tolist()
    assert a.channel_min.tolist() == whole.channel_min.tolist() and a.channel_max.tolist() == whole.channel_max.tolist()
    assert a.reservoir.shape == (16, 4) and all(tuple(r) in pool for r in a.reservoir.tolist())
    assert len({tuple(r) for r in a.reservoir.tolist()}) == 16


def test_merge_weights_shards_by_rows_seen():
    # A shard that saw 9× the rows supplies ~90% of the merged sample (2000 merges, 8 slots).
    taken = 0
    for trial in range(2000):
        big, small = LayerStepStatistics(1, 8), LayerStepStatistics(1, 8)
        big.reservoir, big.rows = np.ones((8, 1), np.float32), 900
        small.reservoir, small.rows = np.zeros((8, 1), np.float32), 100
        big.merge(small, np.random.default_rng(trial))
        taken += int(big.reservoir.sum())
    assert taken / (2000 * 8) == pytest.approx(0.9, abs=0.01)


def test_nan_never_moves_a_range_and_is_binned_last():
    # The engine's `v < channelMinimum[k]` is false for NaN; `bin(of:)` puts NaN in the last bin.
    x = np.array([[1.0, np.nan], [np.nan, -2.0], [3.0, 0.5]], dtype=np.float32)
    s = LayerStepStatistics(2, 8)
    s.observe(torch.from_numpy(x))
    assert s.channel_min.tolist() == [1.0, -2.0] and s.channel_max.tolist() == [3.0, 0.5]
    assert s.minimum == -2.0 and s.maximum == 3.0
    assert int(s.histogram[BIN_COUNT - 1]) == 2 and int(s.histogram.sum()) == 6


def test_prompt_lines_split_as_swift_splits_them():
    from stsq_collect.collect import read_prompts
    # "\r\n" is one Character in Swift, so it does not split; spaces and tabs are trimmed, "#" lines skipped.
    assert read_prompts(" a red circle \n\t# comment\n\nb\r\nc\n") == ["a red circle", "b\r\nc"]
