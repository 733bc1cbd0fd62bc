"""Per (layer, sampler step) activation statistics, exactly as `stsq-tui calibrate` records them
(`Sources/Quantization/CalibrationStatistics.swift`, QUANTIZATION.md "Calibration statistics"):
per-input-channel min and max, the tensor's min and max (also after a Hadamard rotation of each
row), a histogram of |x| with 8 bins per octave
from 2⁻²⁴ to 2¹⁶ (plus a bin for exact zeros and one for anything above), and a uniform sample of
up to `capacity` input rows (Algorithm R, slots from xorshift64* seeded by the layer's name and the
step). Ranges and histograms are computed on the tensor's device; only sampled rows leave it.
"""
import numpy as np
import torch

from .generators import Xorshift64Star, fnv1a

BINS_PER_OCTAVE = 8
LOWEST_EXPONENT = -24
HIGHEST_EXPONENT = 16
BIN_COUNT = (HIGHEST_EXPONENT - LOWEST_EXPONENT) * BINS_PER_OCTAVE + 2
# Mantissa bits m with 1 + m/2²³ ≥ 2^(k/8), k = 1…7: ⌈(2^(k/8) − 1)·2²³⌉.
SUB_OCTAVE_THRESHOLDS = [759234, 1587185, 2490071, 3474676, 4548395, 5719293, 6996167]


def histogram_bins(x):
    """The bin of every |x| (int64 tensor of x's shape), from the float's bits as the engine does."""
    bits = x.detach().to(torch.float32).abs().view(torch.int32).to(torch.int64)
    exponent = (bits >> 23) - 127
    mantissa = bits & 0x7F_FFFF
    sub = torch.zeros_like(bits)
    for t in SUB_OCTAVE_THRESHOLDS:
        sub += (mantissa >= t).to(torch.int64)
    b = 1 + (exponent - LOWEST_EXPONENT) * BINS_PER_OCTAVE + sub
    b = torch.where(exponent < LOWEST_EXPONENT, torch.ones_like(b), b)
    b = torch.where(exponent >= HIGHEST_EXPONENT, torch.full_like(b, BIN_COUNT - 1), b)
    return torch.where(bits == 0, torch.zeros_like(b), b)


def hadamard_block(width):
    """`HadamardRotation.blockSize`: the largest power of two dividing the width."""
    return width & -width


def rotate(x, block):
    """`HadamardRotation.rotate`: each consecutive `block` values of the rows of `x` [n, width]
    times the Sylvester–Hadamard matrix of that size, scaled by 1/√block."""
    h = torch.ones(1, 1, dtype=torch.float32, device=x.device)
    while h.shape[0] < block:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    n, width = x.shape
    return (x.reshape(n, width // block, block) @ h).reshape(n, width) * np.float32(1 / np.sqrt(block))


def stream_seed(layer, step):
    """`layer.name.hashValueStable &+ UInt64(step)`."""
    return (fnv1a(layer.encode()) + step) & ((1 << 64) - 1)


class LayerStepStatistics:
    """Statistics of one layer's inputs at one sampler step. Arrays are numpy on the host:
    `channel_min`/`channel_max` float32 [width], `histogram` uint64 [BIN_COUNT], `reservoir`
    float32 [n ≤ capacity, width]; `rows` counts every row observed."""

    def __init__(self, width, capacity=32, seed=0x5EED):
        self.width = width
        self.capacity = capacity
        self.channel_min = np.full(width, np.inf, dtype=np.float32)
        self.channel_max = np.full(width, -np.inf, dtype=np.float32)
        self.minimum = np.float32(np.inf)
        self.maximum = np.float32(-np.inf)
        # The range after the Hadamard rotation of each row (`rotate`, block `hadamard_block`).
        self.rotated_min = np.float32(np.inf)
        self.rotated_max = np.float32(-np.inf)
        self.histogram = np.zeros(BIN_COUNT, dtype=np.uint64)
        self.rows = 0
        self.reservoir = np.zeros((0, width), dtype=np.float32)
        self._random = Xorshift64Star(seed)

    def observe(self, x):
        """Adds the rows of `x` [..., width] (any device; float32 values) in row-major order."""
        x = x.detach().reshape(-1, self.width).to(torch.float32)
        n = x.shape[0]
        if n == 0:
            return
        # NaN never moves a range (the engine's `v < min` is false for it); it is binned last.
        nan = torch.isnan(x)
        lo = torch.where(nan, torch.full_like(x, float("inf")), x).amin(dim=0)
        hi = torch.where(nan, torch.full_like(x, float("-inf")), x).amax(dim=0)
        self.channel_min = np.minimum(self.channel_min, lo.cpu().numpy())
        self.channel_max = np.maximum(self.channel_max, hi.cpu().numpy())
        self.minimum = min(self.minimum, self.channel_min.min())
        self.maximum = max(self.maximum, self.channel_max.max())
        # In pieces of rows: the bins take ~12× the input's bytes while computed.
        counts = torch.zeros(BIN_COUNT, dtype=torch.int64, device=x.device)
        piece = max(1, (1 << 22) // self.width)
        block = hadamard_block(self.width)
        for start in range(0, n, piece):
            counts += torch.bincount(histogram_bins(x[start:start + piece]).reshape(-1), minlength=BIN_COUNT)
            r = rotate(x[start:start + piece], block)
            self.rotated_min = min(self.rotated_min, np.float32(r.amin().item()))
            self.rotated_max = max(self.rotated_max, np.float32(r.amax().item()))
        self.histogram += counts.cpu().numpy().astype(np.uint64)
        self._sample(x, n)

    def _sample(self, x, n):
        # Algorithm R: the i-th row (1-based) replaces a random slot with probability capacity/i.
        fill = min(n, self.capacity - self.reservoir.shape[0])
        if fill > 0:
            self.reservoir = np.concatenate([self.reservoir, x[:fill].cpu().numpy()])
        rest = n - fill
        if rest > 0:
            draws = self._random.draws(rest)
            seen = np.arange(self.rows + fill + 1, self.rows + n + 1, dtype=np.uint64)
            slots = draws % seen
            hits = np.nonzero(slots < self.capacity)[0]
            if hits.size:
                # Later rows overwrite earlier ones in the same slot: keep each slot's last hit.
                reversed_slots = slots[hits][::-1]
                unique, first = np.unique(reversed_slots, return_index=True)
                rows = hits[::-1][first]
                self.reservoir[unique.astype(np.int64)] = x[torch.as_tensor(fill + rows, device=x.device)].cpu().numpy()
        self.rows += n

    def merge(self, other, rng):
        """Merges statistics of another shard of the same (layer, step): ranges and histograms
        exactly; the reservoir as a uniform sample of the union — each slot taken from a shard
        with probability proportional to the rows that shard saw and has not yet given (weighted
        sampling without replacement), rows within a shard in random order. `rng`: numpy Generator."""
        assert other.width == self.width, f"merging widths {self.width} and {other.width}"
        self.channel_min = np.minimum(self.channel_min, other.channel_min)
        self.channel_max = np.maximum(self.channel_max, other.channel_max)
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        self.rotated_min = min(self.rotated_min, other.rotated_min)
        self.rotated_max = max(self.rotated_max, other.rotated_max)
        self.histogram = self.histogram + other.histogram
        pools = [list(rng.permutation(len(self.reservoir))), list(rng.permutation(len(other.reservoir)))]
        sources = [self.reservoir, other.reservoir]
        remaining = [self.rows, other.rows]
        picked = []
        while len(picked) < self.capacity and (pools[0] or pools[1]):
            if not pools[0]:
                k = 1
            elif not pools[1]:
                k = 0
            else:
                k = 0 if rng.random() * (remaining[0] + remaining[1]) < remaining[0] else 1
            picked.append(sources[k][pools[k].pop()])
            remaining[k] -= 1
        self.reservoir = np.array(picked, dtype=np.float32).reshape(-1, self.width)
        self.rows += other.rows
