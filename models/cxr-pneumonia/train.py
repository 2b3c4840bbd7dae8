#!/usr/bin/env python3
"""Train cxr-pneumonia: NORMAL vs PNEUMONIA on paediatric CXRs (Kermany), from scratch.

Network: CXRNet (ResNet-18 layout at half width, 1 channel, 224x224, ~2.8 M params, ~11 MB) -- see
models/common/nets.py for why this instead of EfficientNet-B0. AdamW + warmup/cosine LR tied to
the wall-clock budget, bf16 autocast on CUDA, EMA of weights, class-weighted BCE (pos_weight =
#normal/#pneumonia), on-GPU augmentation (random affine = resized crop/rotation/shear, brightness,
contrast, gamma, noise, resolution jitter). Split: by patient, 15 % validation (pack meta).

  python3 models/cxr-pneumonia/train.py --data .devdata/cxr-pneumonia/pack.npz --out OUT [--minutes 4]
  python3 models/cxr-pneumonia/train.py --data .devdata/cxr-pneumonia/pack.npz --out /tmp/s --smoke
Needs only torch + numpy.

2.0 (the defaults below): site-shift augmentation on top (--site-aug: window/LUT curves, blur/sharpen,
black/white frames, burnt-in text markers, wider zoom; models/common/aug.py SITE_DEFAULTS) and label
smoothing 0.05 against the overconfident logits. 2.0.0 was fine-tuned on the CPU from package 1.2.3:
  nice -n 10 python3 models/cxr-pneumonia/train.py --data .devdata/cxr-pneumonia/pack.npz --out OUT \
      --init models/cxr-pneumonia/package/model.pt --lr 4e-4 --ema 0.99 --minutes 40 --epochs 12 --device cpu
  (interrupted? the same command with --resume continues from OUT/last.ckpt)
1.x: --no-site-aug --label-smoothing 0 (from scratch, 60 epochs on a GPU).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.cls_train import run  # noqa: E402

if __name__ == "__main__":
    run({"name": "cxr-pneumonia", "task": "pneumonia", "description": __doc__,
         "minutes": 4.0, "epochs": 120, "lr": 2e-3, "wd": 0.05, "batch": 128, "ema": 0.998,
         "select": "best", "res_p": 0.15, "pos_weight_max": 20.0, "reserve_s": 20.0,
         "site_aug": True, "label_smoothing": 0.05})
