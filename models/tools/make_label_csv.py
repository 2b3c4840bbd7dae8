#!/usr/bin/python3
"""Writes the labelled CSVs `medvision calibrate` and `models/<name>/evaluate` read, from the same
deterministic patient-level split the training used (models/tools/pack_data.py).

The validation split of a model was used to pick its epoch, so it is not untouched. It is divided
again, by patient, into two halves:
  <out>/<name>-calibration.csv  fits the calibration and the operating point
  <out>/<name>-evaluation.csv   is where the model card's numbers (before/after calibration) come from

  models/tools/make_label_csv.py cxr-pneumonia --out .devdata/labels
"""
import argparse
import csv
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.splits import kermany_patient, patient_split  # noqa: E402

SEED = 20240611  # pack_data.py's split seed
HALF_SEED = 7


def rows_pneumonia(root: Path):
    with open(root / "kermany" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [r["path"] for r in rows]
    label = [1 if r["label"] == "PNEUMONIA" else 0 for r in rows]
    patients = [kermany_patient(p) for p in paths]
    is_val = patient_split(patients, 0.15, SEED, strata=label)
    return [(str(root / "kermany" / p), "Pneumonia" if y else "normal", g)
            for p, y, g, v in zip(paths, label, patients, is_val) if v]


NIH_FINDINGS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema", "Fibrosis",
                "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax"]


def rows_findings(root: Path):
    """The validation split of cxr-findings / cxr-edema, as pack_data.py's pack_findings makes it."""
    with open(root / "nih14" / "labels.csv", newline="") as f:
        ra = list(csv.DictReader(f))
    with open(root / "nih14-64px" / "labels.csv", newline="") as f:
        rb = list(csv.DictReader(f))
    names_a = {r["image"] for r in ra}
    rb = [r for r in rb if r["image_index"] not in names_a]
    ids = [r["image"] for r in ra] + [r["image_index"] for r in rb]
    files = [root / "nih14" / "images" / r["image"] for r in ra] + [root / "nih14-64px" / r["path"] for r in rb]
    patients = [i[:8] for i in ids]
    findings = [r["labels"] for r in ra] + [r["finding_labels"] for r in rb]
    edema = [1 if "Edema" in s.split("|") else 0 for s in findings]
    is_val = patient_split(patients, 0.25, SEED, strata=edema)
    # Only the labels the package predicts (Hernia had too few positives to train).
    manifest = Path(__file__).resolve().parents[1] / "cxr-findings" / "package" / "manifest.json"
    model_labels = set(json.loads(manifest.read_text())["labels"])
    out = []
    for f, s, g, v in zip(files, findings, patients, is_val):
        if not v:
            continue
        names = [x for x in s.split("|") if x in model_labels]
        out.append((str(f), "|".join(names) if names else "normal", g))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=["cxr-pneumonia", "cxr-findings", "cxr-edema"])
    ap.add_argument("--out", default=".devdata/labels")
    args = ap.parse_args()
    root = Path(os.environ.get("MEDVISION_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    rows = rows_pneumonia(root) if args.name == "cxr-pneumonia" else rows_findings(root)
    if args.name == "cxr-edema":
        # The whole validation split with the one label, not halved: with ~4 positive images
        # there is nothing to fit a calibration on (the model card says why it stays
        # uncalibrated), and halving would leave two.
        rows = [(p, "Edema" if "Edema" in lab.split("|") else "normal", g) for p, lab, g in rows]
        path = Path(args.out) / "cxr-edema-evaluation.csv"
        os.makedirs(args.out, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            w.writerows([p, lab] for p, lab, _ in rows)
        pos = sum(1 for r in rows if r[1] != "normal")
        print(f"wrote {path}: {len(rows)} images, {pos} positive, {len({r[2] for r in rows})} patients")
        return
    strata = [0 if r[1] == "normal" else 1 for r in rows]
    in_eval = patient_split([r[2] for r in rows], 0.5, HALF_SEED, strata=strata)
    os.makedirs(args.out, exist_ok=True)
    for part, keep in (("calibration", False), ("evaluation", True)):
        path = Path(args.out) / f"{args.name}-{part}.csv"
        sel = [r for r, e in zip(rows, in_eval) if bool(e) == keep]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for p, lab, _ in sel:
                w.writerow([p, lab])
        pos = sum(1 for r in sel if r[1] != "normal")
        print(f"wrote {path}: {len(sel)} images, {pos} positive, "
              f"{len({r[2] for r in sel})} patients")


if __name__ == "__main__":
    main()
