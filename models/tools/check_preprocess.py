#!/usr/bin/env python3
"""Check that the packed training images equal the manifest preprocessing applied to the raw files.

For a few images per dataset: decode the raw file, run common.preprocess.apply_steps with the model's
manifest steps up to (not including) `channels`/`normalize`, and compare with the packed uint8 / 255.
Expected: <= 0.5/255 + rounding for lossless packs; the DCT codec adds ~50 dB PSNR noise for Kermany.
Optionally writes reference tensors for the C++ tests (--dump DIR: input float32 .npy + expected
normalised model input .npy per image).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import data_root, devdata_dir, log  # noqa: E402
from common.packio import load_pack  # noqa: E402
from common.preprocess import apply_steps, cxr_steps, to_grey  # noqa: E402


def _img(p):
    from PIL import Image
    return np.asarray(Image.open(p))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--dump", default=None)
    args = ap.parse_args()
    root = data_root()
    dd = devdata_dir()
    jobs = []
    if (dd / "cxr-pneumonia/pack.npz").exists():
        meta, a = load_pack(dd / "cxr-pneumonia/pack.npz", names=["images"])
        jobs.append(("cxr-pneumonia", [root / "kermany" / p for p in meta["ids"]], a["images"], (224, 224)))
    if (dd / "cxr-lungs/pack.npz").exists():
        meta, a = load_pack(dd / "cxr-lungs/pack.npz", names=["images"])
        jobs.append(("cxr-lungs", [root / "jsrt/images" / f"{c}.png" for c in meta["ids"]], a["images"], (256, 256)))
    if (dd / "cxr-findings/pack.npz").exists():
        meta, a = load_pack(dd / "cxr-findings/pack.npz", names=["images_a"])
        jobs.append(("cxr-findings", [root / "nih14/images" / i for i in meta["ids"][:len(a["images_a"])]],
                     a["images_a"], (224, 224)))
    ok = True
    for name, paths, packed, size in jobs:
        idx = np.linspace(0, len(packed) - 1, args.n).astype(int)
        steps = cxr_steps(size, 1)
        errs = []
        for i in idx:
            raw = to_grey(_img(paths[i]))[None]  # what the runtime hands the pipeline: float32 grey
            x = apply_steps(raw, steps[:3])[0]
            errs.append(np.abs(x - packed[i] / 255.0).max())
            if args.dump:
                d = Path(args.dump) / name
                d.mkdir(parents=True, exist_ok=True)
                np.save(d / f"{i:05d}_input.npy", raw.astype(np.float32))
                np.save(d / f"{i:05d}_model_input.npy", apply_steps(raw, steps).astype(np.float32))
        e = float(np.max(errs))
        lim = 30 / 255 if name == "cxr-pneumonia" else 1.01 / 255
        ok &= e <= lim
        log(f"[check] {name}: max |manifest(raw) - packed| = {e * 255:.2f}/255 over {len(idx)} images "
            f"({'OK' if e <= lim else 'FAIL'})")
    if (dd / "brain-tumour/pack.npz").exists():
        import nibabel as nib
        from common.preprocess import zscore
        meta, a = load_pack(dd / "brain-tumour/pack.npz")
        rec = meta["cases"][0]
        base = root / "brats/bratsreg2018-flair-t1" / rec["case"]
        vol = np.stack([np.asarray(nib.as_closest_canonical(nib.load(str(base / f"{m}.nii.gz"))).dataobj,
                                   np.float32).transpose(2, 1, 0) for m in ("FLAIR", "T1")])
        sl = tuple(slice(lo, hi) for lo, hi in zip(rec["bbox_lo"], rec["bbox_hi"]))
        full = np.zeros_like(vol)
        full[(slice(None),) + sl] = a[f"img_{rec['case']}"]
        e = float(np.abs(zscore(full) - zscore(vol)).max())
        ok &= e < 1e-5
        log(f"[check] brain-tumour {rec['case']}: packed crop == reoriented raw volume, z-score max diff {e:.2e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
