#!/usr/bin/env python3
"""Train cxr-edema: binary pulmonary oedema on adult CXRs (NIH ChestX-ray14).

There are only ~43 Edema-positive images from 17 patients here (one patient has 21 of them), so a
model trained on them is WEAK and its validation estimate is very uncertain (the patient-level split
leaves ~4 positive images in validation). Strategy: start from the cxr-findings weights (backbone +
its Edema output row; same pack and therefore the SAME patient split, so no leakage), fine-tune
briefly with a low LR and class-weighted BCE. metrics.json reports the init model (= the findings
model's Edema output) on the same validation images next to the fine-tuned one and a trivial
baseline (AUROC 0.5, all-negative accuracy) -- pick honestly.

  python3 models/cxr-edema/train.py --data .devdata/cxr-findings/pack.npz --out OUT \
      --init OUT_FINDINGS/best.weights.npz
Needs only torch + numpy.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.cls_train import run  # noqa: E402

if __name__ == "__main__":
    run({"name": "cxr-edema", "task": "edema", "description": __doc__,
         "minutes": 1.0, "epochs": 30, "lr": 3e-4, "wd": 0.05, "batch": 64, "ema": 0.99,
         "select": "last", "res_p": 0.3, "pos_weight_max": 20.0, "reserve_s": 15.0, "eval_init": True,
         "init": ".devdata/gpu-work/cxr-findings/best.weights.npz"})
