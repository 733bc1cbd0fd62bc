"""The calibration cache on disk, in the format `stsq-tui` reads (`CalibrationCache.swift`,
format `stsq-calibration/5`): one folder per key digest holding `statistics.safetensors`
(`<layer>@<step>.channel_min` / `.channel_max` F32 [K], `.histogram` U64 [bins], `.reservoir` F32
[n, K]) and `index.json` (the key, the statistics file's size and FNV-1a, the FNV-1a of the layer
table, and per layer and step min, max, the rotated input's min and max, rows). The key's digest is FNV-1a of its compact JSON,
written here byte for byte as the Swift writer writes it, so both find the same folder.
"""
import json
import os
import random
import shutil

import numpy as np
from safetensors.numpy import load_file, save

from .generators import fnv1a
from .statistics import BIN_COUNT, LayerStepStatistics

FORMAT = "stsq-calibration/5"


class Literal(str):
    """A JSON number written as given."""


def swift_float(x):
    """Swift's `Float.description`: the shortest decimal that reads back as the same float32,
    positional for Float(1e-4) ≤ |x| ≤ 2²⁴ and zero ("5.0", "0.0001", "16777216.0"), else exponential
    ("9.999e-05", "2.5165824e+07"); thresholds measured on Swift 6.3."""
    v = np.float32(x)
    if not np.isfinite(v):
        raise ValueError(f"{x} is not finite")
    a = abs(v)
    if a != 0 and (a < np.float32(1e-4) or a > np.float32(2 ** 24)):
        return np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    return np.format_float_positional(v, unique=True, trim="0")


def _string(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def serialize(value, pretty=False, indent=0):
    """`JSONValue.serialized(pretty:)`: dicts keep insertion order, `Literal` numbers as written."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        if not value:
            return "[]"
        flat = not pretty or all(not isinstance(e, (list, dict)) for e in value)
        parts = []
        for i, e in enumerate(value):
            sep = "" if i == 0 else (", " if flat and pretty else ",")
            lead = "" if flat else "\n" + " " * (indent + 2)
            parts.append(sep + lead + serialize(e, pretty, indent + 2))
        tail = "" if flat else "\n" + " " * indent
        return "[" + "".join(parts) + tail + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for i, (k, v) in enumerate(value.items()):
            sep = "" if i == 0 else ","
            lead = "\n" + " " * (indent + 2) if pretty else ""
            parts.append(sep + lead + _string(k) + (": " if pretty else ":") + serialize(v, pretty, indent + 2))
        tail = "\n" + " " * indent if pretty else ""
        return "{" + "".join(parts) + tail + "}"
    raise TypeError(f"cannot serialize {type(value).__name__}")


def digest(value):
    return "%016x" % fnv1a(serialize(value).encode())


class Key:
    """What makes two calibrations the same (`CalibrationCache.Key`)."""

    def __init__(self, checkpoint_hash, prompts, steps, cfg_scale, seeds, sampler="rflow"):
        self.checkpoint_hash = checkpoint_hash
        self.prompts = list(prompts)
        self.sampler = sampler
        self.steps = int(steps)
        self.cfg_scale = float(np.float32(cfg_scale))
        self.seeds = [int(s) for s in seeds]

    def json(self):
        return {"checkpoint_hash": self.checkpoint_hash, "prompts": list(self.prompts), "sampler": self.sampler,
                "steps": self.steps, "cfg_scale": Literal(swift_float(self.cfg_scale)),
                "seeds": [Literal(str(s)) for s in self.seeds]}

    @property
    def digest(self):
        return digest(self.json())


def default_directory(env=None):
    """`$XDG_CACHE_HOME/stsq-tui/calibration` (absolute only), else `~/.cache/stsq-tui/calibration`."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg.startswith("/"):
        return xdg + "/stsq-tui/calibration"
    return (env.get("HOME") or os.path.expanduser("~")) + "/.cache/stsq-tui/calibration"


def _temporary_name(base):
    suffix = ".tmp-%d-%d" % (os.getpid(), random.getrandbits(32))
    return "." + base[: 255 - 1 - len(suffix)] + suffix


def save_cache(statistics, key, directory):
    """Writes `statistics` {layer: {step: LayerStepStatistics}} under `directory/<digest>`
    atomically (a temporary folder renamed into place; an earlier entry is replaced whole).
    Returns the folder."""
    folder = os.path.join(directory, key.digest)
    os.makedirs(directory, exist_ok=True)
    tensors = {}
    layers = {}
    for layer in sorted(statistics):
        steps = statistics[layer]
        entries = {}
        for step in sorted(steps):
            s = steps[step]
            prefix = f"{layer}@{step}"
            tensors[prefix + ".channel_min"] = np.ascontiguousarray(s.channel_min, dtype=np.float32)
            tensors[prefix + ".channel_max"] = np.ascontiguousarray(s.channel_max, dtype=np.float32)
            tensors[prefix + ".histogram"] = np.ascontiguousarray(s.histogram, dtype=np.uint64)
            tensors[prefix + ".reservoir"] = np.ascontiguousarray(s.reservoir, dtype=np.float32).reshape(-1, s.width)
            try:
                entries[str(step)] = {"min": Literal(swift_float(s.minimum)), "max": Literal(swift_float(s.maximum)),
                                      "rotated_min": Literal(swift_float(s.rotated_min)),
                                      "rotated_max": Literal(swift_float(s.rotated_max)), "rows": int(s.rows)}
            except ValueError:
                raise ValueError(f"{layer} at step {step}: the inputs' range is [{s.minimum}, {s.maximum}] "
                                 "(NaN or ±Inf activations): nothing is saved") from None
        first = next(iter(steps.values()))
        layers[layer] = {"width": first.width, "reservoir_rows": first.capacity, "steps": entries}
    blob = save(tensors)
    index = {"format": FORMAT, "key": key.json(),
             "statistics": {"bytes": len(blob), "fnv1a": "%016x" % fnv1a(blob), "layers_fnv1a": digest(layers)},
             "layers": layers}
    temporary = os.path.join(directory, _temporary_name(key.digest))
    os.makedirs(temporary)
    try:
        with open(os.path.join(temporary, "statistics.safetensors"), "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        with open(os.path.join(temporary, "index.json"), "w") as f:
            f.write(serialize(index, pretty=True))
            f.flush()
            os.fsync(f.fileno())
        replace_folder(folder, temporary)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return folder


def replace_folder(folder, temporary):
    """Renames `temporary` (a folder beside `folder`) into place; an existing `folder` is moved
    aside first and removed after, so a reader sees the old folder or the new one, never a mix
    (`AtomicFile.replaceDirectory` in the engine)."""
    if os.path.exists(folder):
        parent, base = os.path.split(os.path.abspath(folder))
        aside = os.path.join(parent, _temporary_name(base))
        os.rename(folder, aside)
        os.rename(temporary, folder)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(temporary, folder)


class CacheError(Exception):
    pass


def load_cache(folder):
    """Reads an entry written by either implementation: (index dict, {layer: {step: stats}})."""
    index_path = os.path.join(folder, "index.json")
    with open(index_path) as f:
        index = json.load(f)
    if index.get("format") != FORMAT:
        raise CacheError(f"{index_path}: format {index.get('format')!r}, expected {FORMAT!r}")
    path = os.path.join(folder, "statistics.safetensors")
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) != index["statistics"]["bytes"] or "%016x" % fnv1a(blob) != index["statistics"]["fnv1a"]:
        raise CacheError(f"{path}: size or FNV-1a does not match {index_path}")
    tensors = load_file(path)
    result = {}
    for layer, entry in index["layers"].items():
        for step_text, values in entry["steps"].items():
            prefix = f"{layer}@{step_text}"
            s = LayerStepStatistics(entry["width"], entry["reservoir_rows"])
            s.channel_min = tensors[prefix + ".channel_min"]
            s.channel_max = tensors[prefix + ".channel_max"]
            s.histogram = tensors[prefix + ".histogram"]
            assert s.histogram.shape == (BIN_COUNT,), f"{prefix}.histogram has shape {s.histogram.shape}"
            s.reservoir = tensors[prefix + ".reservoir"].reshape(-1, entry["width"])
            s.minimum = np.float32(values["min"])
            s.maximum = np.float32(values["max"])
            s.rotated_min = np.float32(values["rotated_min"])
            s.rotated_max = np.float32(values["rotated_max"])
            s.rows = values["rows"]
            result.setdefault(layer, {})[int(step_text)] = s
    return index, result
