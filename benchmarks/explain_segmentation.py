#!/usr/bin/python3
"""Localisation and faithfulness of medvision's segmentation Grad-CAM on real chest X-rays: the
bundled cxr-lungs package on the 39 held-out JSRT cases of its training split (the cases
models/tools/evaluate_segmentation.py scores), classes left_lung, right_lung and heart.

Localisation (against the SCR ground-truth masks, which the maps never see):
  energy share  = the map's sum inside the structure / its sum over the image, next to the
                  structure's share of the image (what a uniform map would get);
  pointing game = the map's maximum lies inside the structure (Zhang et al. 2018).
Faithfulness (deletion, as Petsiuk et al. 2018 for classification): the pixels the map ranks
  highest (k = 5, 10, 20 % of the image) are replaced by a blurred copy of the image and the
  class's mean probability over the region the model predicted on the intact image is read back
  through medvision; the same for k % random pixels. A faithful map makes the probability fall
  faster than random deletion does.
Everything (maps, probabilities) goes through the Python bindings (libmedvision).
--brats: localisation only, for the bundled 3D brain-tumour package on its two validation cases
  (case_5, case_6: FLAIR + T1 stacked; ground truth GT_W, whole tumour), Grad-CAM.

  PYTHONPATH=build/python benchmarks/explain_segmentation.py [--methods gradcam] [--n 39]
  PYTHONPATH=build/python benchmarks/explain_segmentation.py --brats
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models"))
sys.path.insert(0, str(ROOT / "models" / "tools"))
from common import data_root  # noqa: E402
from evaluate_segmentation import lungs_cases  # noqa: E402

CLASSES = {"left_lung": 1, "right_lung": 2, "heart": 3}
FRACTIONS = (0.05, 0.10, 0.20)


def brats(mv, out):
    root = data_root() / "brats" / "bratsreg2018-flair-t1"
    model = mv.Model(str(ROOT / "models" / "brain-tumour" / "package"))
    res = {"model": "brain-tumour", "method": "gradcam", "cases": {}}
    for case in ("case_5", "case_6"):
        t0 = time.time()
        image = mv.stack([mv.load_image(str(root / case / f)) for f in ("FLAIR.nii.gz", "T1.nii.gz")])
        e = model.explain(image)
        h = np.asarray(e.heatmap, np.float64)
        truth = mv.load_image(str(root / case / "GT_W.nii.gz")).array[0] > 0
        res["cases"][case] = {
            "energy_share": float(h[truth].sum() / h.sum()), "volume_share": float(truth.mean()),
            "pointing_game": bool(truth.ravel()[int(h.argmax())]),
            "mean_heat_in_tumour": float(h[truth].mean()), "mean_heat_outside": float(h[~truth].mean()),
            "region_voxels": e.region_voxels, "tumour_voxels": int(truth.sum()),
            "seconds": round(time.time() - t0, 1)}
        print(case, res["cases"][case], flush=True)
    Path(out).write_text(json.dumps(res, indent=2) + "\n")


def main():
    import medvision as mv

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="gradcam,gradcam++")
    ap.add_argument("--n", type=int, default=39)
    ap.add_argument("--brats", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.brats:
        return brats(mv, args.out or ROOT / "benchmarks" / "results" / "explain_segmentation_brats.json")
    args.out = args.out or str(ROOT / "benchmarks" / "results" / "explain_segmentation.json")
    root = data_root()
    rows = lungs_cases(root)[: args.n]
    model = mv.Model(str(ROOT / "models" / "cxr-lungs" / "package"))
    rng = np.random.RandomState(0)
    per = {m: {c: {"energy_share": [], "area_share": [], "pointing": [],
                   "deletion": {str(k): [] for k in FRACTIONS},
                   "random_deletion": {str(k): [] for k in FRACTIONS}, "intact": []}
               for c in CLASSES} for m in args.methods.split(",")}
    t0 = time.time()
    for r in rows:
        path = root / "jsrt" / r["image"]
        image = mv.load_image(str(path))
        img = image.array[0, 0].astype(np.float32)
        blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=img.shape[1] / 16)
        seg = model.segment(image, probabilities=True)
        for cls, value in CLASSES.items():
            truth = np.asarray(cv2.imread(str(root / "jsrt" / r[f"mask_{cls}"]), cv2.IMREAD_GRAYSCALE)) > 0
            predicted = seg.mask[0] == value
            intact = float(seg.probabilities[value, 0][predicted].mean())
            for method, res in per.items():
                h = np.asarray(model.explain(image, label=cls, method=method).heatmap, np.float64)
                st = res[cls]
                st["energy_share"].append(float(h[truth].sum() / max(h.sum(), 1e-12)))
                st["area_share"].append(float(truth.mean()))
                st["pointing"].append(bool(truth.ravel()[int(h.argmax())]))
                st["intact"].append(intact)
                order = np.argsort(-h.ravel(), kind="stable")
                for k in FRACTIONS:
                    n = int(round(k * h.size))
                    for key, idx in (("deletion", order[:n]), ("random_deletion", rng.permutation(h.size)[:n])):
                        a = img.copy().ravel()
                        a[idx] = blurred.ravel()[idx]
                        s = model.segment(mv.from_numpy(a.reshape(img.shape)), probabilities=True)
                        st[key][str(k)].append(float(s.probabilities[value, 0][predicted].mean()))
        print(f"{r['image']}: {time.time() - t0:.0f} s", flush=True)

    summary = {"cases": len(rows), "model": "cxr-lungs", "fractions": list(FRACTIONS), "methods": {}}
    for method, res in per.items():
        out = {}
        for cls, st in res.items():
            out[cls] = {
                "energy_share_mean": float(np.mean(st["energy_share"])),
                "area_share_mean": float(np.mean(st["area_share"])),
                "pointing_game": float(np.mean(st["pointing"])),
                "intact_probability_mean": float(np.mean(st["intact"])),
                "deletion_probability_mean": {k: float(np.mean(v)) for k, v in st["deletion"].items()},
                "random_deletion_probability_mean": {k: float(np.mean(v)) for k, v in st["random_deletion"].items()},
                "cases_where_map_deletion_beats_random": {
                    k: int(np.sum(np.array(st["deletion"][k]) < np.array(st["random_deletion"][k])))
                    for k in st["deletion"]},
            }
        summary["methods"][method] = out
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
