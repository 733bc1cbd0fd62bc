#!/usr/bin/env python3
"""Regenerates the committed test fixtures with the Python tools into a temporary folder and
compares them with Tests/Fixtures: byte for byte first, then — where bytes differ — tensor by tensor
(names, dtypes, shapes, and the largest difference relative to the tensor's largest value).
Not part of `make test` (it needs PyTorch); run it after changing a tool or a reference module:

    python3 -m venv tools/.venv && tools/.venv/bin/pip install torch numpy safetensors scikit-image
    tools/.venv/bin/python scripts/check_fixtures.py [--tolerance 1e-5]

Float outputs of PyTorch may differ in the last bits between versions and CPUs; the exit status
is 1 only when a file's structure differs or a tensor differs by more than the tolerance.
`demo-golden.safetensors` comes with the demo checkpoint (tools/export_demo_model.py needs the
training export) and is not regenerated here.
"""
import argparse, json, os, subprocess, sys, tempfile

import numpy as np
from safetensors.numpy import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def generators(out):
    """(command, [(regenerated file, committed file)])"""
    engine = os.path.join(out, "engine")
    os.makedirs(engine, exist_ok=True)
    committed_engine = os.path.join(FIXTURES, "engine")
    return [
        (["tools/make_engine_fixtures.py", engine],
         [(os.path.join(engine, f), os.path.join(committed_engine, f)) for f in sorted(os.listdir(committed_engine))]),
        (["tools/make_layout_fixtures.py", out],
         [(os.path.join(out, f), os.path.join(FIXTURES, f)) for f in ("stdit-layout.safetensors", "stdit3-layout.safetensors")]),
        (["tools/make_scene_fixtures.py", os.path.join(out, "scenes.safetensors")],
         [(os.path.join(out, "scenes.safetensors"), os.path.join(FIXTURES, "scenes.safetensors"))]),
        (["tools/make_metric_fixtures.py", out],
         [(os.path.join(out, "metrics.safetensors"), os.path.join(FIXTURES, "metrics.safetensors"))]),
        (["tools/make_judge_fixtures.py", "16", os.path.join(out, "judge-parity.safetensors")],
         [(os.path.join(out, "judge-parity.safetensors"), os.path.join(FIXTURES, "judge-parity.safetensors"))]),
    ]


def compare(new, old, tolerance):
    """(ok, description)"""
    if not os.path.exists(new):
        return False, "not regenerated"
    if open(new, "rb").read() == open(old, "rb").read():
        return True, "identical bytes"
    if new.endswith(".json"):
        return compare_json(json.load(open(new)), json.load(open(old)), tolerance, "")
    if not new.endswith(".safetensors"):
        return False, "bytes differ"
    a, b = load_file(new), load_file(old)
    if set(a) != set(b):
        return False, f"tensors differ: new {sorted(set(a) - set(b))}, missing {sorted(set(b) - set(a))}"
    worst, worst_name = 0.0, None
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.dtype != y.dtype or x.shape != y.shape:
            return False, f"{name}: {x.dtype}{list(x.shape)} vs committed {y.dtype}{list(y.shape)}"
        if not np.array_equal(x, y):
            scale = max(float(np.abs(y.astype(np.float64)).max()), 1e-30)
            d = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) / scale
            if d > worst:
                worst, worst_name = d, name
    if worst_name is None:
        return True, "same tensors (metadata or layout differs)"
    return worst <= tolerance, f"largest difference {worst:.2e} of max|ref| in {worst_name}"


def compare_json(a, b, tolerance, path):
    """Structure equal, numbers within `tolerance` relative: (ok, description of the first difference)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return False, f"{path or '/'}: keys differ: {sorted(set(a) ^ set(b))}"
        results = [compare_json(a[k], b[k], tolerance, f"{path}/{k}") for k in sorted(a)]
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False, f"{path}: {len(a)} entries vs {len(b)}"
        results = [compare_json(x, y, tolerance, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b))]
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        ok = abs(a - b) <= tolerance * max(abs(b), 1e-30)
        return ok, f"{path}: {a} vs {b}" if not ok else "equal within the tolerance"
    else:
        return a == b, f"{path}: {a!r} vs {b!r}" if a != b else "equal"
    bad = [r for r in results if not r[0]]
    return (False, bad[0][1]) if bad else (True, "equal within the tolerance")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as out:
        for command, files in generators(out):
            run = subprocess.run([sys.executable] + command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if run.returncode != 0:
                print(f"FAILED  {command[0]}:\n{run.stdout[-2000:]}")
                failures += 1
                continue
            for new, old in files:
                ok, description = compare(new, old, args.tolerance)
                failures += not ok
                print(f"{'ok' if ok else 'DIFFERS':7} {os.path.relpath(old, ROOT)}: {description}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
