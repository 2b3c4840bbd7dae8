#!/usr/bin/env bash
# Builds the benchmark programs, makes the inputs (git-ignored, under the build folder), runs the
# decode and end-to-end benchmarks with medvision and the Python peers alternately, and writes
# benchmarks/results/decode.json and e2e.json. See docs/performance.md. ~10 minutes on 2 cores.
#
#   benchmarks/run_all.sh [--quick] [decode] [e2e]
# Environment: BUILD (default build-bench), MEDVISION_DATA (default /work/shared/data), JOBS (2),
# THREADS (2: intra-op threads on both sides).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
JOBS=${JOBS:-2}
PY=/usr/bin/python3   # Debian's: torch, torchvision, pydicom + gdcm (a pyenv python3 lacks them)
export MEDVISION_DATA=${MEDVISION_DATA:-/work/shared/data}
DATA="$BUILD/bench-data"

if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMV_BUILD_TESTS=OFF -DMV_BUILD_BENCHMARKS=ON
fi
ninja -C "$BUILD" -j"$JOBS" medvision_cli medvision_decode_bench

"$PY" benchmarks/make_bench_dicoms.py --out "$DATA"
[[ -f "$DATA/densenet121/manifest.json" ]] || "$PY" benchmarks/make_bench_model.py --out "$DATA/densenet121"

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" benchmarks/run_bench.py --build "$BUILD" --data "$DATA" --threads "${THREADS:-2}" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
