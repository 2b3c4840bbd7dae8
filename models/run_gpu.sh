#!/usr/bin/env bash
# Train the reference models on the GPU machine, one run at a time:
#
#   bash models/run_gpu.sh A "$OUT"    # cxr-pneumonia (4.0 min) + cxr-lungs (3.0 min)
#   bash models/run_gpu.sh B "$OUT"    # cxr-findings (1.5) + cxr-edema (1.0) + brain-tumour (5.5)
#
# Needs python3 with CUDA torch + numpy only. Carry (ignored paths, packed by
# models/tools/pack_data.py on the workstation):
#   run A: .devdata/cxr-pneumonia .devdata/cxr-lungs
#   run B: .devdata/cxr-findings .devdata/brain-tumour .devdata/init
#          (.devdata/init/cxr-pneumonia.weights.npz = run A's output, the findings backbone init;
#           without it cxr-findings trains from scratch and says so)
# Writes into OUT (flat, <= 8 files, each < 16 MiB):
#   <name>.weights.npz    kept EMA weights (numpy npz, float32; float16 params only if > 15 MiB)
#   <name>.results.tar    metrics.json, val_predictions.csv (+ val_predictions.npz for segmentation)
#   run<A|B>-summary.json key validation metrics of the run
#   run<A|B>.log          full training log
# Env: PYTHON (default python3), WORK (default .devdata/gpu-work: checkpoints, kept while the
# machine stays warm), RESUME=1 to continue interrupted trainings from WORK/<name>/last.ckpt,
# MINUTES_SCALE (e.g. 0.5) to scale every budget.
set -uo pipefail
RUN=${1:?usage: run_gpu.sh A|B OUT}
OUT=${2:?usage: run_gpu.sh A|B OUT}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=${WORK:-.devdata/gpu-work}
SCALE=${MINUTES_SCALE:-1}
mkdir -p "$OUT" "$WORK"
LOG="$OUT/run$RUN.log"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
: > "$LOG"
RCS=""

$PY -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" 2>&1 | tee -a "$LOG"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>/dev/null | tee -a "$LOG"

mins() { $PY -c "print(round($1 * $SCALE, 3))"; }

train() {  # train NAME MINUTES ARGS...
  local name=$1 m; m=$(mins "$2"); shift 2
  local extra=()
  [ "${RESUME:-0}" = 1 ] && extra+=(--resume)
  echo "=== $name --minutes $m $* $(date -u +%H:%M:%S)" | tee -a "$LOG"
  $PY "models/$name/train.py" --out "$WORK/$name" --minutes "$m" --device auto ${extra[@]+"${extra[@]}"} "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  RCS="$RCS $name=$rc"
  if [ -f "$WORK/$name/best.weights.npz" ]; then
    cp "$WORK/$name/best.weights.npz" "$OUT/$name.weights.npz"
  fi
  local files=()
  for f in metrics.json val_predictions.csv val_predictions.npz; do
    [ -f "$WORK/$name/$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] && tar -C "$WORK/$name" -cf "$OUT/$name.results.tar" "${files[@]}"
  echo "=== $name exit $rc" | tee -a "$LOG"
}

case "$RUN" in
  A)
    train cxr-pneumonia 4.0 --data .devdata/cxr-pneumonia/pack.npz
    train cxr-lungs 3.0 --data .devdata/cxr-lungs/pack.npz
    NAMES="cxr-pneumonia cxr-lungs"
    ;;
  B)
    train cxr-findings 1.5 --data .devdata/cxr-findings/pack.npz --init .devdata/init/cxr-pneumonia.weights.npz
    train cxr-edema 1.0 --data .devdata/cxr-findings/pack.npz --init "$WORK/cxr-findings/best.weights.npz"
    train brain-tumour 5.5 --data .devdata/brain-tumour/pack.npz
    NAMES="cxr-findings cxr-edema brain-tumour"
    ;;
  *) echo "unknown run $RUN (A or B)"; exit 2 ;;
esac

$PY - "$WORK" "$OUT/run$RUN-summary.json" "$RCS" $NAMES <<'PYEOF' 2>&1 | tee -a "$LOG"
import json, sys, os
work, dst, rcs, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
summ = {"exit_codes": dict(kv.split("=") for kv in rcs.split())}
for n in names:
    p = os.path.join(work, n, "metrics.json")
    if not os.path.exists(p):
        summ[n] = "no metrics.json"
        continue
    m = json.load(open(p))
    s = {k: m.get(k) for k in ("device_name", "torch", "epochs_run", "selected", "selected_epoch", "best_epoch",
                               "val_mean_auroc", "val_mean_dice", "val_dice_lungs_union", "elapsed_s")}
    if isinstance(m.get("val"), dict):
        s["val"] = {k: {kk: v.get(kk) for kk in ("auroc", "auroc_ci95", "accuracy", "sensitivity", "specificity",
                                                 "ece15", "n", "positives")} for k, v in m["val"].items()}
    if m.get("val_dice") is not None:
        s["val_dice"] = m["val_dice"]
    if m.get("init_model_val"):
        s["init_model_val"] = {k: {"auroc": v["auroc"], "auroc_ci95": v["auroc_ci95"]} for k, v in m["init_model_val"].items()}
    summ[n] = s
json.dump(summ, open(dst, "w"), indent=1)
print(json.dumps(summ, indent=1)[:4000])
PYEOF
ls -la "$OUT" | tee -a "$LOG"
echo "done run $RUN:$RCS"
