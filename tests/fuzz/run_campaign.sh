#!/bin/bash
# Resumable fuzzing campaign in chunks (docs/fuzzing.md). The corpus is kept between chunks, so
# a campaign can be run a few minutes at a time on a shared machine and resumed later.
#
#   tests/fuzz/run_campaign.sh HARNESS SECONDS [CHUNKS]
#
#   HARNESS  load_dicom | load_nifti | load_raster | dicom_series | manifest | package_archive |
#            labels_csv | label_map  (or "all": each in turn, one chunk of SECONDS each)
#   SECONDS  length of one chunk (libFuzzer -max_total_time), one process on one core
#   CHUNKS   how many chunks to run now (default 1)
#
# Environment: MV_FUZZ_BUILD (default build-fuzz, configured with -DMV_BUILD_FUZZERS=ON), MV_FUZZ_NICE
# (niceness of each chunk, default 15),
# MV_FUZZ_WORK (default ../fuzz-decoders beside the checkout: seeds/, corpus/<harness>/,
# artifacts/<harness>/ and campaign.tsv, outside git). Seeds come from make_corpus.py on first
# use. Each chunk runs under nice with -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 and
# appends one row to campaign.tsv: date, harness, wall seconds, CPU seconds (user + system, as
# /usr/bin/time measures them: on a shared machine a chunk gets less CPU than wall time),
# executions, cov, ft, corpus size,
# new artifacts (crash-/leak-/oom-/timeout- files: minimise them with -minimize_crash=1 and add
# them to tests/fuzz/regressions/<harness>/ once fixed).
# TMPDIR: the harnesses that go through files (dicom_series, package_archive, labels_csv) write
# each input to a temporary folder; on a disk that makes them I/O-bound (measured: 10-15 % of a
# core), so the default is a folder in /dev/shm (tmpfs) where one is writable.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${TMPDIR:-}" ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm/mv-fuzz-$(id -u)
  mkdir -p "$TMPDIR"
fi
BUILD=${MV_FUZZ_BUILD:-$ROOT/build-fuzz}
WORK=${MV_FUZZ_WORK:-$ROOT/../fuzz-decoders}
HARNESS=${1:?usage: run_campaign.sh HARNESS SECONDS [CHUNKS]}
SECONDS_PER_CHUNK=${2:?usage: run_campaign.sh HARNESS SECONDS [CHUNKS]}
CHUNKS=${3:-1}
ALL="load_dicom load_nifti load_raster dicom_series manifest package_archive labels_csv label_map"

if [ "$HARNESS" = all ]; then
  for h in $ALL; do "$0" "$h" "$SECONDS_PER_CHUNK" "$CHUNKS"; done
  exit 0
fi
BIN=$BUILD/tests/fuzz/fuzz_$HARNESS
[ -x "$BIN" ] || { echo "no $BIN: configure $BUILD with -DMV_BUILD_FUZZERS=ON and build it" >&2; exit 2; }
mkdir -p "$WORK"
[ -d "$WORK/seeds" ] || /usr/bin/python3 "$ROOT/tests/fuzz/make_corpus.py" "$WORK/seeds"
CORPUS=$WORK/corpus/$HARNESS
ARTIFACTS=$WORK/artifacts/$HARNESS
mkdir -p "$CORPUS" "$ARTIFACTS"
[ -f "$WORK/campaign.tsv" ] || printf 'date\tharness\twall_s\tcpu_s\texecutions\tcov\tft\tcorpus\tnew_artifacts\n' > "$WORK/campaign.tsv"

for ((i = 0; i < CHUNKS; i++)); do
  before=$(ls "$ARTIFACTS" | wc -l)
  log=$WORK/last-$HARNESS.log
  # libFuzzer stops at the first finding: fix it, add the regression, resume.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  /usr/bin/time -f '%U %S' -o "$WORK/last-$HARNESS.cpu" \
  nice -n "${MV_FUZZ_NICE:-15}" "$BIN" "$CORPUS" "$WORK/seeds/$HARNESS" -max_total_time="$SECONDS_PER_CHUNK" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=262144 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/" > "$log" 2>&1 || true
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}' || true)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}' || true)
  after=$(ls "$ARTIFACTS" | wc -l)
  cpu=$(awk 'END {printf "%.0f", $1 + $2}' "$WORK/last-$HARNESS.cpu")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$HARNESS" "$SECONDS_PER_CHUNK" "$cpu" \
    "${execs:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$CORPUS" | wc -l)" "$((after - before))" \
    >> "$WORK/campaign.tsv"
  tail -1 "$WORK/campaign.tsv"
  if [ "$after" -gt "$before" ]; then
    echo "new artifact(s) in $ARTIFACTS; see $log" >&2
    exit 1
  fi
done
