#!/usr/bin/env python3
"""Train cxr-findings: multi-label NIH ChestX-ray14 findings (those with >= 30 positives here, plus
Edema and Pneumonia; the list is in the pack meta `train_labels`).

Data: nih14/ (416 adult CXRs, 320 px -> 224) + nih14-64px/ (995 more at 64 px, upsampled to 224
exactly as the runtime's resize would; resolution-jitter augmentation bridges the two). Patient-level
split over the union, 25 % validation, stratified by Edema. ~1.4k images is far too little to learn
CXR features from scratch, so the backbone is initialised from the cxr-pneumonia weights (run A,
Kermany, 5.2k CXRs) when --init exists; otherwise it trains from scratch and says so.
Weights kept: the final EMA (--select last): with ~360 validation images, picking the best epoch on
them would bias the reported AUROCs upward.

  python3 models/cxr-findings/train.py --data .devdata/cxr-findings/pack.npz --out OUT \
      --init .devdata/init/cxr-pneumonia.weights.npz
Needs only torch + numpy.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.cls_train import run  # noqa: E402

if __name__ == "__main__":
    run({"name": "cxr-findings", "task": "findings", "description": __doc__,
         "minutes": 1.5, "epochs": 60, "lr": 1e-3, "wd": 0.05, "batch": 64, "ema": 0.995,
         "select": "last", "res_p": 0.3, "pos_weight_max": 10.0, "reserve_s": 15.0,
         "init": ".devdata/init/cxr-pneumonia.weights.npz"})
