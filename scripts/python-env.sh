#!/usr/bin/env bash
# Creates tools/.venv (git-ignored) for the Python tests and installs the collector package
# (tools/stsq_collect) into it, editable, with onnx and onnxruntime for its ONNX test. CPU-only
# PyTorch: its wheel is ~200 MB where the default one pulls ~3 GB of CUDA libraries the tests do
# not use. Reruns only when pyproject.toml or this script changes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=tools/.venv
stamp=$venv/.installed
project=tools/stsq_collect/pyproject.toml
if [ -f "$stamp" ] && [ "$stamp" -nt "$project" ] && [ "$stamp" -nt "$0" ]; then exit 0; fi
python3 -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
echo "installing the Python test environment in $venv (CPU PyTorch, ONNX Runtime, pytest)" >&2
pip install "torch==2.13.0+cpu" 2>/dev/null || pip install torch
pip install numpy safetensors pytest onnx onnxruntime
pip install --no-deps -e tools/stsq_collect
touch "$stamp"
