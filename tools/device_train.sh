#!/usr/bin/env bash
# Continue the demo model's training on a CUDA machine for a fixed number of minutes, then judge
# the raw and the EMA weights on all eval prompts × 2 seeds and hand everything back.
#
#   tools/device_train.sh STATE OUTDIR [MINUTES]
#
# STATE is a training state of tools/train_demo.py (it is copied, never written). OUTDIR receives
# raw.safetensors and ema.safetensors (tools/export_demo_model.py ships either), the new state
# split into 15 MB parts (state.pt.part-aa, -ab, ...; `cat` them back together), and train.log.
# The options are the CPU run's (tools/README.md) with a larger batch, which costs a GPU next to
# nothing, and a linear lr decay over the last 40% of the minutes.
# PYTHON (default python3) must have torch, numpy and safetensors; DEVICE (default cuda) picks the
# device, e.g. `DEVICE=cpu PYTHON=tools/.venv/bin/python tools/device_train.sh STATE /tmp/out 0.2`
# for a smoke run here.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 STATE OUTDIR [MINUTES]" >&2; exit 2; }
state=$1 out=$2 minutes=${3:-6.5}
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "MINUTES must be a number, got '$minutes'" >&2; exit 2; }
[ -f "$state" ] || { echo "no training state at $state" >&2; exit 2; }
py=${PYTHON:-python3} device=${DEVICE:-cuda}   # DEVICE=cpu: a local smoke run
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
export PYTHONUNBUFFERED=1
cp "$state" "$work/state.pt" || exit
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

anneal=$(awk "BEGIN { print 0.4 * $minutes }")
guard=$(awk "BEGIN { printf \"%d\", $minutes * 60 + 45 }")
timeout "$guard" "$py" "$here/train_demo.py" --device "$device" --out "$work/export" --state "$work/state.pt" \
    --batch 256 --lr 5e-4 --rewarm 50 --fg-weight 2 --t-shift 2 --high-noise-frac 0.4 \
    --motion-weight 2 --reverse-pairs --bf16 --max-minutes "$minutes" --anneal-minutes "$anneal" \
    --eval-every-min 1 --eval-subset 16 --save-every 500 --log-every 200 --target-fidelity 2
status=$?
echo "train_demo exited with $status"
# A stop by the guard (124) is a failure too: the state would be an older save.
[ $status -eq 0 ] || { echo "training failed; nothing exported" >&2; exit $status; }

mkdir -p "$out"
cat "$work/export/loss.log" "$work/export/quality.log" > "$out/train.log" 2>/dev/null
split -b 15M "$work/state.pt" "$out/state.pt.part-" || exit
for w in raw ema; do
    "$py" "$here/train_demo.py" --export-state "$work/state.pt" --weights $w --out "$work/$w" &&
        cp "$work/$w/model.safetensors" "$out/$w.safetensors" &&
        "$py" "$here/train_demo.py" --sample-only "$out/$w.safetensors" --device "$device" --seeds 0,1 || exit
done
ls -l "$out"
