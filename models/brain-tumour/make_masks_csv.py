#!/usr/bin/python3
"""The masks CSV `medvision evaluate --masks` reads for brain-tumour, and the model card's
evaluation.json from what it writes (models/brain-tumour/evaluate runs both).

  models/brain-tumour/make_masks_csv.py --work .devdata/eval/brain-tumour
      -> WORK/masks.csv (`flair,t1,mask`: the two input channels, in the manifest's order, then
         the reference)
  models/brain-tumour/make_masks_csv.py --work WORK --card WORK/eval/evaluation.json \\
      --out models/brain-tumour/evaluation.json

Cases: the held-out validation cases case_5 and case_6 of $MEDVISION_DATA/brats/bratsreg2018-flair-t1
(cases 0-4 trained the model), the cases models/tools/evaluate_segmentation.py scored. Images:
FLAIR.nii.gz and T1.nii.gz, stacked by medvision as `medvision segment --stack` does. Reference:
GT_W.nii.gz (binary whole tumour, labels {0, 1}: label 1 = the package's label 0, whole_tumour, of
a sigmoid package), on the images' own grid (1 mm voxels), used as it is: no copy, no resampling.
"""
import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import data_root  # noqa: E402

CASES = ["case_5", "case_6"]  # evaluate_segmentation.py's BRAIN_CASES


def make_masks(work: Path):
    root = data_root() / "brats" / "bratsreg2018-flair-t1"
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "masks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["flair", "t1", "mask"])
        for c in CASES:
            files = [root / c / n for n in ("FLAIR.nii.gz", "T1.nii.gz", "GT_W.nii.gz")]
            missing = [str(p) for p in files if not p.is_file()]
            if missing:
                sys.exit(f"{missing[0]}: not found (set MEDVISION_DATA to the test data folder)")
            w.writerow([str(p) for p in files])
    print(f"{work / 'masks.csv'}: {len(CASES)} cases ({', '.join(CASES)})")


def subject(case_dir: Path):
    lines = (case_dir / "subject_id.txt").read_text().splitlines()
    return [l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("subject_id:")][0]


def card(eval_json: Path, out: Path):
    """models/brain-tumour/evaluation.json: the card's fields from medvision's evaluation.json."""
    if not eval_json.is_file():
        sys.exit(f"{eval_json}: not found (run medvision evaluate --masks first)")
    ev = json.loads(eval_json.read_text())
    if ev.get("task") != "segmentation" or len(ev["models"]) != 1:
        sys.exit(f"{eval_json}: expected one segmentation model")
    m = ev["models"][0]
    pkg = json.loads((HERE / "package" / "manifest.json").read_text())
    if (pkg["name"], pkg["version"]) != (m["name"], m["version"]):
        sys.exit(f"{eval_json}: evaluated {m['name']} {m['version']}, "
                 f"the package here is {pkg['name']} {pkg['version']}")
    if ev["units"] != {"spacing_known": True, "distance": "mm", "volume": "ml"}:
        sys.exit(f"{eval_json}: expected distances in mm and volumes in mL, got {ev['units']}")
    per = {}
    for c in ev["cases"]:
        flair = Path(c["case"].split("+")[0])  # "<case>/FLAIR.nii.gz+<case>/T1.nii.gz"
        r = c["models"][0]["whole_tumour"]
        per[flair.parent.name] = {
            "subject": subject(flair.parent), "dice": r["dice"], "hd95_mm": r["hd95"],
            "gt_voxels": r["reference_voxels"], "pred_voxels": r["prediction_voxels"],
            "gt_ml": r["reference"], "pred_ml": r["prediction"], "volume_error_ml": r["volume_error"]}
    if sorted(per) != sorted(CASES):
        sys.exit(f"{eval_json}: cases {sorted(per)}, expected {CASES}")
    # The training run's window-layout comparison needs its val_predictions.npz (not in the data
    # folder): models/tools/evaluate_segmentation.py --reference wrote it; kept from the card
    # being replaced when that card is of the same package.
    if out.is_file():
        old = json.loads(out.read_text())
        if old.get("model", {}).get("sha256") == pkg["sha256"]:
            for c, v in per.items():
                ref = old.get("cases", {}).get(c, {}).get("training_run_reference")
                if ref is not None:
                    v["training_run_reference"] = ref
    dice = [v["dice"] for v in per.values()]
    res = {"model": {"name": m["name"], "version": m["version"], "sha256": pkg["sha256"]},
           "via": "medvision evaluate --masks (models/brain-tumour/evaluate, docs/evaluate.md)",
           "reference": "GT_W.nii.gz (binary whole tumour) on the images' grid, 1 mm voxels",
           "training_run_reference": "per case, from models/tools/evaluate_segmentation.py --reference "
                                     "(the training run's val_predictions.npz), kept across reruns",
           "options": ev["options"], "units": ev["units"], "cases": per, "n": len(per),
           "mean_dice": float(np.mean(dice)),
           "mean_hd95_mm": float(np.mean([v["hd95_mm"] for v in per.values()])),
           "region": m["regions"]["whole_tumour"],
           "goal": "whole-tumour Dice >= 0.80 on held-out cases"}
    res["goal_met_on_mean"] = res["mean_dice"] >= 0.80
    res["goal_met_every_case"] = all(d >= 0.80 for d in dice)
    res["note"] = ev["note"] + " n = 2: two measurements, no confidence interval worth the name."
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{m['name']} {m['version']} via medvision evaluate --masks")
    print("| case | subject | Dice | HD95 (mm) | GT voxels | predicted voxels |\n|---|---|---|---|---|---|")
    for c, v in per.items():
        print(f"| {c} | {v['subject']} | {v['dice']:.4f} | {v['hd95_mm']:.2f} | {v['gt_voxels']} | "
              f"{v['pred_voxels']} |")
    print(f"mean Dice {res['mean_dice']:.4f}, mean HD95 {res['mean_hd95_mm']:.2f} mm; wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="folder for masks.csv (under .devdata/)")
    ap.add_argument("--card", help="medvision's evaluation.json: write --out from it instead")
    ap.add_argument("--out", help="with --card: the model card's evaluation.json")
    a = ap.parse_args()
    if a.card:
        if not a.out:
            ap.error("--card needs --out")
        card(Path(a.card), Path(a.out))
    else:
        make_masks(Path(a.work))


if __name__ == "__main__":
    main()
