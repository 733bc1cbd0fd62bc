"""The project's deterministic generators, bit for bit as the Swift engine runs them:

- `Xorshift64Star`: the reservoir's slot generator (`LayerStepStatistics.nextRandom`), seeded with
  `fnv1a(layer name) + step`, state `seed | 1`;
- `NoiseGenerator`: PCG32 (`pcg32_random_r`, XSH-RR) driving Box–Muller in double precision, the
  initial noise of every calibration batch (`Sources/VideoDiT/NoiseGenerator.swift`);
- `fnv1a`: 64-bit FNV-1a, the checkpoint hash and the cache's digests.

Both generators are sequential recurrences; numpy draws many values at once by jumping ahead
(xorshift is linear over GF(2): states k..2k−1 are A^k applied to states 0..k−1; PCG's LCG has the
closed form a^k·s + c·(a^k − 1)/(a − 1)).
"""
import ctypes
import math
import os
import subprocess
import tempfile

import numpy as np

MASK64 = (1 << 64) - 1
_U64 = np.uint64


# ---------------------------------------------------------------------------------------------
# xorshift64* (reservoir slots)
# ---------------------------------------------------------------------------------------------
_XS_MULTIPLIER = 2_685_821_657_736_338_717


def _xorshift_step(x):
    x ^= x >> 12
    x ^= (x << 25) & MASK64
    x ^= x >> 27
    return x


def _byte_tables(columns):
    """Tables [8, 256] of a GF(2) 64×64 matrix given by its columns (images of bit j), so that
    M·x = XOR_b tables[b][byte b of x]."""
    tables = np.zeros((8, 256), dtype=_U64)
    v = np.arange(256)
    for b in range(8):
        for i in range(8):
            tables[b, (v >> i) & 1 == 1] ^= columns[8 * b + i]
    return tables


def _apply(tables, x):
    y = tables[0][x & _U64(0xFF)]
    for b in range(1, 8):
        y = y ^ tables[b][(x >> _U64(8 * b)) & _U64(0xFF)]
    return y


class _JumpTables:
    """Byte tables of A^(2^j) for the xorshift step A, built on demand by squaring."""

    def __init__(self):
        cols = np.array([_xorshift_step(1 << j) for j in range(64)], dtype=_U64)
        self.tables = [_byte_tables(cols)]
        self.columns = [cols]

    def power_of_two(self, j):
        while len(self.tables) <= j:
            cols = _apply(self.tables[-1], self.columns[-1])   # M² column k = M·(M e_k)
            self.columns.append(cols)
            self.tables.append(_byte_tables(cols))
        return self.tables[j]


_JUMPS = None


def _jumps():
    global _JUMPS
    if _JUMPS is None:
        _JUMPS = _JumpTables()
    return _JUMPS


class Xorshift64Star:
    """xorshift64* as `LayerStepStatistics` runs it: `x ^= x >> 12; x ^= x << 25; x ^= x >> 27`,
    output `x · 2685821657736338717 mod 2^64`."""

    def __init__(self, seed):
        self.state = (seed | 1) & MASK64

    def next(self):
        self.state = _xorshift_step(self.state)
        return (self.state * _XS_MULTIPLIER) & MASK64

    def draws(self, n):
        """The next n outputs as a uint64 array (the same values n calls of `next` return)."""
        if n <= 0:
            return np.zeros(0, dtype=_U64)
        if n <= 16:
            return np.array([self.next() for _ in range(n)], dtype=_U64)
        states = np.array([_xorshift_step(self.state)], dtype=_U64)
        j = 0
        while states.size < n:   # states[k..2k) = A^k · states[0..k)
            states = np.concatenate([states, _apply(_jumps().power_of_two(j), states)])
            j += 1
        states = states[:n]
        self.state = int(states[-1])
        return states * _U64(_XS_MULTIPLIER)


# ---------------------------------------------------------------------------------------------
# PCG32 + Box–Muller (initial noise)
# ---------------------------------------------------------------------------------------------
_PCG_A = 6_364_136_223_846_793_005


def _lcg_jump(k, increment):
    """(a^k, c·(1 + a + … + a^(k−1))) mod 2^64: k steps of s ← a·s + c in one."""
    acc_mult, acc_plus = 1, 0
    cur_mult, cur_plus = _PCG_A, increment
    while k > 0:
        if k & 1:
            acc_mult = (acc_mult * cur_mult) & MASK64
            acc_plus = (acc_plus * cur_mult + cur_plus) & MASK64
        cur_plus = ((cur_mult + 1) * cur_plus) & MASK64
        cur_mult = (cur_mult * cur_mult) & MASK64
        k >>= 1
    return acc_mult, acc_plus


class NoiseGenerator:
    """`NoiseGenerator(seed:stream:)` of the Swift engine: identical standard normal values."""

    def __init__(self, seed, stream=54):
        self.increment = ((stream << 1) | 1) & MASK64
        self.state = 0
        self._advance(1)
        self.state = (self.state + seed) & MASK64
        self._advance(1)
        self.spare = None

    def _advance(self, k):
        mult, plus = _lcg_jump(k, self.increment)
        self.state = (mult * self.state + plus) & MASK64

    def uint32s(self, n):
        """The next n 32-bit outputs (uint64 array of values < 2^32)."""
        if n == 0:
            return np.zeros(0, dtype=_U64)
        powers = np.empty(n, dtype=_U64)
        powers[0] = 1
        powers[1:] = _U64(_PCG_A)
        powers = np.cumprod(powers, dtype=_U64)                 # a^k, wrapping
        sums = np.concatenate([[_U64(0)], np.cumsum(powers[:-1], dtype=_U64)])   # Σ_{j<k} a^j
        old = powers * _U64(self.state) + sums * _U64(self.increment)
        self._advance(n)
        xorshifted = (((old >> _U64(18)) ^ old) >> _U64(27)) & _U64(0xFFFF_FFFF)
        rotation = old >> _U64(59)
        left = (_U64(32) - rotation) & _U64(31)
        return ((xorshifted >> rotation) | (xorshifted << left)) & _U64(0xFFFF_FFFF)

    def gaussian(self, count):
        """`count` standard normal values as float32, in the engine's order (cos, then sin of each
        pair; a leftover sin is kept for the next call)."""
        out = np.empty(count, dtype=np.float32)
        i = 0
        if count and self.spare is not None:
            out[0] = self.spare
            self.spare = None
            i = 1
        pairs = (count - i + 1) // 2
        draws = self.uint32s(2 * pairs)
        uniforms = ((draws >> _U64(8)).astype(np.float64) + 0.5) / 16_777_216.0
        two_pi = 2 * math.pi
        log, sqrt, cos, sin = math.log, math.sqrt, math.cos, math.sin   # the C library's, as Swift's
        values = []
        for u1, u2 in zip(uniforms[0::2].tolist(), uniforms[1::2].tolist()):
            r = sqrt(-2 * log(u1))
            angle = two_pi * u2
            values.append(r * cos(angle))
            values.append(r * sin(angle))
        values = np.array(values, dtype=np.float64).astype(np.float32)
        take = count - i
        out[i:] = values[:take]
        if take < values.size:
            self.spare = values[take]
        return out

    def skip_gaussians(self, count):
        """Advances as `gaussian(count)` would, without computing the values it skips."""
        if count <= 0:
            return
        if self.spare is not None:
            self.spare = None
            count -= 1
        self._advance(2 * (count // 2))
        if count % 2:
            self.gaussian(1)


# ---------------------------------------------------------------------------------------------
# FNV-1a
# ---------------------------------------------------------------------------------------------
_FNV_OFFSET = 0xCBF2_9CE4_8422_2325
_FNV_PRIME = 0x100_0000_01B3

_C_SOURCE = r"""
#include <stdint.h>
#include <stddef.h>
uint64_t stsq_fnv1a(const unsigned char *p, size_t n, uint64_t h) {
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
    return h;
}
"""
_C_FNV = None


def _compiled_fnv():
    """FNV-1a compiled with the system C compiler (a checkpoint of gigabytes takes hours in pure
    Python), or None where there is none."""
    global _C_FNV
    if _C_FNV is not None:
        return _C_FNV or None
    _C_FNV = False
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "stsq-tui")
    lib = os.path.join(cache, "libstsq_fnv1a.so")
    try:
        if not os.path.exists(lib):
            os.makedirs(cache, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as tmp:   # same filesystem: os.replace works
                src = os.path.join(tmp, "fnv.c")
                with open(src, "w") as f:
                    f.write(_C_SOURCE)
                out = os.path.join(tmp, "libfnv.so")
                subprocess.run(["cc", "-O2", "-shared", "-fPIC", src, "-o", out], check=True, capture_output=True)
                os.replace(out, lib)
        handle = ctypes.CDLL(lib)
        handle.stsq_fnv1a.restype = ctypes.c_uint64
        handle.stsq_fnv1a.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
        _C_FNV = handle.stsq_fnv1a
    except (OSError, subprocess.CalledProcessError):
        _C_FNV = False
    return _C_FNV or None


def fnv1a(data, h=_FNV_OFFSET):
    """64-bit FNV-1a of bytes, continuing from h."""
    fast = _compiled_fnv() if len(data) > 1 << 16 else None
    if fast is not None:
        return fast(bytes(data), len(data), h)
    for b in bytes(data):
        h = ((h ^ b) * _FNV_PRIME) & MASK64
    return h


def fnv1a_file(path, chunk=1 << 26):
    """FNV-1a of a whole file, hex (`CalibrationCache.checkpointHash`)."""
    h = _FNV_OFFSET
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h = fnv1a(block, h)
    return "%016x" % h
