#!/bin/bash
# One stream of a campaign toward 30 CPU-minutes per harness (docs/fuzzing.md). Start two (one
# per core): each repeatedly takes the harness with the most CPU time still missing that no other
# stream is running, runs one run_campaign.sh chunk of 300 s, and stops when every harness has
# 1860 CPU-seconds, when $WORK/STOP exists, or skips a harness after a finding (FINDING-<harness>).
#   tests/fuzz/run_streams.sh &  tests/fuzz/run_streams.sh &
# Environment as run_campaign.sh; the niceness of each chunk is read from $WORK/nice (default 15)
# before each chunk, so it can be changed while the streams run.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${MV_FUZZ_WORK:-$ROOT/../fuzz-decoders}
ORDER="load_dicom dicom_series load_nifti load_raster manifest package_archive labels_csv"
mkdir -p "$W"
while true; do
  [ -e "$W/STOP" ] && break
  pick=""
  exec 9>"$W/streams.lock"; flock 9
  best=0
  for h in $ORDER; do
    [ -e "$W/busy-$h" ] && continue
    [ -e "$W/FINDING-$h" ] && continue
    cpu=$(awk -F'\t' -v h="$h" '$2==h {s+=$4} END {print s+0}' "$W/campaign.tsv" 2>/dev/null || echo 0)
    need=$((1860 - ${cpu:-0}))
    if [ "$need" -gt "$best" ]; then best=$need; pick=$h; fi
  done
  [ -n "$pick" ] && touch "$W/busy-$pick"
  flock -u 9
  [ -z "$pick" ] && { echo "every harness has its CPU time (or a finding to fix)"; break; }
  MV_FUZZ_NICE=$(cat "$W/nice" 2>/dev/null || echo 15) "$ROOT/tests/fuzz/run_campaign.sh" "$pick" 300 1
  rc=$?
  rm -f "$W/busy-$pick"
  [ $rc -ne 0 ] && { echo "finding in $pick"; touch "$W/FINDING-$pick"; }
done
