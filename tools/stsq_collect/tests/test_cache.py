"""The cache format: Swift's float literals, the key digest, a round trip, atomic replacement."""
import os

import numpy as np
import torch

from stsq_collect import cache
from stsq_collect.statistics import LayerStepStatistics


def test_swift_float_literals():
    # Float.description on Swift 6.3, measured: positional for 1e-4 ≤ |x| ≤ 2^24, else exponential.
    cases = [(5.0, "5.0"), (7.5, "7.5"), (0.1, "0.1"), (0.0, "0.0"), (-0.0, "-0.0"), (0.0001, "0.0001"), (9.999e-05, "9.999e-05"),
             (1e-05, "1e-05"), (16777216.0, "16777216.0"), (25165824.0, "2.5165824e+07"), (1e7, "10000000.0"),
             (123456.79, "123456.79"), (3.4028235e38, "3.4028235e+38"), (1.17549435e-38, "1.1754944e-38"), (4.5, "4.5"),
             (float(np.nextafter(np.float32(1e-4), np.float32(0))), "9.999999e-05")]
    assert [(x, cache.swift_float(x)) for x, _ in cases] == cases


def test_serializer_matches_the_swift_writer():
    value = {"a": [1, 2, cache.Literal("3.5")], "b": {"c": "q\"\\\n\t\x01é"}, "d": [], "e": {}, "f": [{"g": None, "h": True}]}
    assert cache.serialize(value) == '{"a":[1,2,3.5],"b":{"c":"q\\"\\\\\\n\\t\\u0001é"},"d":[],"e":{},"f":[{"g":null,"h":true}]}'
    assert cache.serialize({"a": [1, 2], "b": {"c": 1}, "f": [{"g": 1}]}, pretty=True) == (
        '{\n  "a": [1, 2],\n  "b": {\n    "c": 1\n  },\n  "f": [\n    {\n      "g": 1\n    }\n  ]\n}')


def test_key_json_is_the_engines():
    key = cache.Key("00ff", ["a red circle", "x"], 30, 5.0, [0, 18446744073709551615])
    assert cache.serialize(key.json()) == ('{"checkpoint_hash":"00ff","prompts":["a red circle","x"],"sampler":"rflow",'
                                           '"steps":30,"cfg_scale":5.0,"seeds":[0,18446744073709551615]}')


def test_round_trip_and_replacement(tmp_path):
    rng = np.random.default_rng(0)
    stats = {}
    for layer in ("temporal_blocks.0.mlp.fc2", "spatial_blocks.0.attn.qkv"):
        for step in (0, 2, 10):
            s = LayerStepStatistics(6, 4, seed=step)
            s.observe(torch.from_numpy(rng.standard_normal((50, 6)).astype(np.float32)))
            stats.setdefault(layer, {})[step] = s
    key = cache.Key("abc", ["p"], 11, 7.0, [1])
    folder = cache.save_cache(stats, key, str(tmp_path))
    assert os.path.basename(folder) == key.digest and sorted(os.listdir(folder)) == ["index.json", "statistics.safetensors"]
    index, back = cache.load_cache(folder)
    assert list(index["layers"]) == sorted(stats)
    for layer, steps in stats.items():
        for step, s in steps.items():
            b = back[layer][step]
            assert b.rows == s.rows and b.minimum == s.minimum and b.maximum == s.maximum
            assert b.channel_min.tolist() == s.channel_min.tolist() and b.channel_max.tolist() == s.channel_max.tolist()
            assert b.histogram.tolist() == s.histogram.tolist() and b.reservoir.tolist() == s.reservoir.tolist()
    # A second save replaces the entry whole and leaves no temporary folder behind.
    stats.pop("spatial_blocks.0.attn.qkv")
    cache.save_cache(stats, key, str(tmp_path))
    assert os.listdir(tmp_path) == [key.digest]
    assert list(cache.load_cache(folder)[0]["layers"]) == ["temporal_blocks.0.mlp.fc2"]
