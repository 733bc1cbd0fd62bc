"""The generators against their scalar definitions and published values."""
import math

import numpy as np

from stsq_collect import generators as g


def test_pcg32_published_outputs():
    # pcg32-demo's first outputs for seed 42, stream 54 (also pinned by the Swift tests).
    pcg = g.NoiseGenerator(42, stream=54)
    assert [int(v) for v in pcg.uint32s(3)] == [0xA15C02B7, 0x7B47F409, 0xBA1D3330]


def scalar_pcg(seed, n, stream=54):
    inc = ((stream << 1) | 1) & g.MASK64
    state = 0

    def step():
        nonlocal state
        old = state
        state = (old * 6364136223846793005 + inc) & g.MASK64
        xs = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xs >> rot) | (xs << ((-rot) & 31))) & 0xFFFFFFFF
    step()
    state = (state + seed) & g.MASK64
    step()
    return [step() for _ in range(n)]


def test_pcg32_jump_ahead_equals_the_recurrence():
    for seed in (0, 1, 3, 2**63 + 5):
        pcg = g.NoiseGenerator(seed)
        first = [int(v) for v in pcg.uint32s(5)] + [int(v) for v in pcg.uint32s(300)]
        assert first == scalar_pcg(seed, 305)


def test_gaussians_are_box_muller_on_the_uniforms_and_split_anywhere():
    draws = scalar_pcg(7, 6)
    u = [((d >> 8) + 0.5) / 16777216 for d in draws]
    expect = []
    for u1, u2 in zip(u[0::2], u[1::2]):
        r = math.sqrt(-2 * math.log(u1))
        expect += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    whole = g.NoiseGenerator(7).gaussian(6)
    assert whole.tolist() == np.array(expect, dtype=np.float32).tolist()
    parts = g.NoiseGenerator(7)
    split = np.concatenate([parts.gaussian(3), parts.gaussian(1), parts.gaussian(2)])
    assert split.tolist() == whole.tolist()
    for k in range(0, 6):
        skipped = g.NoiseGenerator(7)
        skipped.skip_gaussians(k)
        assert skipped.gaussian(6 - k).tolist() == whole[k:].tolist()


def test_xorshift_draws_equal_one_at_a_time():
    for n in (1, 16, 17, 1000, 4099):
        a, b = g.Xorshift64Star(12345), g.Xorshift64Star(12345)
        bulk = a.draws(n)
        assert [int(v) for v in bulk] == [b.next() for _ in range(n)]
        assert a.state == b.state


def test_xorshift_step_is_the_engine_recurrence():
    x = 0x5EED | 1
    x ^= x >> 12
    x ^= (x << 25) & g.MASK64
    x ^= x >> 27
    assert g.Xorshift64Star(0x5EED).next() == (x * 2685821657736338717) & g.MASK64


def test_fnv1a_reference_vectors_and_compiled_path():
    assert "%016x" % g.fnv1a(b"") == "cbf29ce484222325"
    assert "%016x" % g.fnv1a(b"a") == "af63dc4c8601ec8c"
    assert "%016x" % g.fnv1a(b"foobar") == "85944171f73967e8"
    blob = bytes(range(256)) * 1024   # long enough for the compiled path
    slow = g._FNV_OFFSET
    for b in blob:
        slow = ((slow ^ b) * g._FNV_PRIME) & g.MASK64
    assert g.fnv1a(blob) == slow
