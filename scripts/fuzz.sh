#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of user files (issue 15) with libFuzzer, which ships
# with the Swift toolchain on Linux. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET…]
# (default 600 s each, all targets). Crashes and slow inputs are written to .build/fuzz-findings/.
# CI runs the seeded mutation fuzzer in the test suite instead (Tests/FuzzTests); this is the
# long run, for hours if you like.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors plan config theme calibration-index)

# Instrument everything for coverage (lld: gold fails on the instrumented objects); libFuzzer's
# driver is linked in and exported so the executable finds it at run time (it has its own main).
swift build -c release --product stsq-fuzz --build-path .build/fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld -Xlinker --undefined=LLVMFuzzerRunDriver -Xlinker --export-dynamic-symbol=LLVMFuzzerRunDriver
binary=.build/fuzz/release/stsq-fuzz
mkdir -p .build/fuzz-findings
for target in "${targets[@]}"; do
    work=".build/fuzz-corpus/$target"      # grows as libFuzzer finds new coverage; seeds stay read-only
    mkdir -p "$work"
    echo "== $target: ${seconds} s"
    "$binary" "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix=".build/fuzz-findings/$target-" \
        "$work" "Tests/Fuzz/corpus/$target" 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|.*(crash|timeout|oom)-)' || true
done
