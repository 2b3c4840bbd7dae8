#!/usr/bin/env bash
# CPU smoke test of every script (tiny subsets, 1 epoch, 2 threads). Needs the packs in .devdata/.
#   bash models/tools/smoke_all.sh        -> .devdata/smoke/
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/usr/bin/python3}
S=.devdata/smoke
mkdir -p $S
$PY models/cxr-pneumonia/train.py --data .devdata/cxr-pneumonia/pack.npz --out $S/cxr-pneumonia --smoke
$PY models/cxr-lungs/train.py --data .devdata/cxr-lungs/pack.npz --out $S/cxr-lungs --smoke
$PY models/cxr-findings/train.py --data .devdata/cxr-findings/pack.npz --out $S/cxr-findings --smoke \
    --init $S/cxr-pneumonia/best.weights.npz
$PY models/cxr-edema/train.py --data .devdata/cxr-findings/pack.npz --out $S/cxr-edema --smoke \
    --init $S/cxr-findings/best.weights.npz
$PY models/brain-tumour/train.py --data .devdata/brain-tumour/pack.npz --out $S/brain-tumour --smoke
# resume path
$PY models/cxr-lungs/train.py --data .devdata/cxr-lungs/pack.npz --out $S/cxr-lungs --smoke --resume --epochs 2
for n in cxr-pneumonia cxr-findings cxr-edema cxr-lungs brain-tumour; do
  $PY models/tools/evaluate.py $n $S/$n --n-boot 200 > $S/$n/evaluate.log
  $PY models/$n/export.py --weights $S/$n/best.weights.npz --metrics $S/$n/evaluation.json --out $S/pkg/$n
done
echo "smoke OK"
