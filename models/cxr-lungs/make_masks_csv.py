#!/usr/bin/python3
"""The reference label maps `medvision evaluate --masks` reads for cxr-lungs, and the model card's
evaluation.json from what it writes (models/cxr-lungs/evaluate runs both).

  models/cxr-lungs/make_masks_csv.py --work .devdata/eval/cxr-lungs
      -> WORK/masks/<case>.png and WORK/masks.csv (`image,mask`), WORK/masks_note.json
  models/cxr-lungs/make_masks_csv.py --work WORK --card WORK/eval/evaluation.json --out models/cxr-lungs/evaluation.json

Cases: the 39 held-out validation cases of pack_data.py's JSRT split (patient_split(cases, 0.2,
seed 20240611, strata=nodule), one image per patient), the cases models/tools/evaluate_segmentation.py
scored. Images: $MEDVISION_DATA/jsrt/images/<case>.png, 384x384 (JSRT's 2048x2048 at 0.175 mm,
downsampled: 0.175 * 2048 / 384 = 0.9333 mm/pixel, given to medvision as --spacing).

Reference label map on the image grid (8-bit PNG), in the package's label-map values: 0 background,
1 left_lung, 2 right_lung, 3 heart (manifest labels; left/right are the patient's sides, SCR
convention, manifest label_note: the SCR left_lung mask lies on the image right; checked per case).
SCR masks overlap a little (the heart's outline runs under the lungs'). Overlap rule = pack_data.py's,
the one that made the training label maps: label = 1 + argmax over (left_lung, right_lung, heart)
coverage where the largest coverage >= 0.5. On the original grid the coverage is 0 or 1, so a pixel
in several masks takes the first of left_lung, right_lung, heart: the lung wins over the heart.
The number of such pixels is written to masks_note.json and printed.
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
from common.splits import patient_split  # noqa: E402

SEED = 20240611  # pack_data.py's split seed
VAL_FRAC = 0.2
PARTS = ("mask_left_lung", "mask_right_lung", "mask_heart")  # label values 1, 2, 3
JSRT_MM_AT_2048 = 0.175
PIXEL_MM = JSRT_MM_AT_2048 * 2048 / 384


def val_rows(root):
    if not (root / "jsrt" / "labels.csv").is_file():
        sys.exit(f"{root / 'jsrt' / 'labels.csv'}: not found (set MEDVISION_DATA to the test data folder)")
    with open(root / "jsrt" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cases = [r["case"] for r in rows]
    nodule = np.array([int(r["nodule"]) for r in rows], np.uint8)
    is_val = patient_split(cases, VAL_FRAC, SEED, strata=nodule)
    return [r for r, v in zip(rows, is_val) if v]


def label_map(root, row):
    """pack_data.py's rule on the original grid; returns the map and the overlap pixel counts."""
    from PIL import Image
    ms = np.stack([np.asarray(Image.open(root / "jsrt" / row[k]).convert("L")) > 127 for k in PARTS])
    cover = ms.astype(np.float32)
    lab = np.zeros(ms.shape[1:], np.uint8)
    fg = cover.max(0) >= 0.5
    lab[fg] = (np.argmax(cover, 0) + 1)[fg].astype(np.uint8)
    over = {"left_lung&heart": int((ms[0] & ms[2]).sum()), "right_lung&heart": int((ms[1] & ms[2]).sum()),
            "left_lung&right_lung": int((ms[0] & ms[1]).sum()), "any": int((ms.sum(0) > 1).sum())}
    return lab, ms, over


def make_masks(work: Path):
    from PIL import Image
    root = data_root()
    rows = val_rows(root)
    if len(rows) != 39:
        sys.exit(f"{root / 'jsrt' / 'labels.csv'}: expected 39 validation cases, found {len(rows)}")
    (work / "masks").mkdir(parents=True, exist_ok=True)
    per_case, side_bad = {}, []
    with open(work / "masks.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "mask"])
        for r in rows:
            lab, ms, over = label_map(root, r)
            img = root / "jsrt" / r["image"]
            with Image.open(img) as im:
                if (im.width, im.height) != (lab.shape[1], lab.shape[0]):
                    sys.exit(f"{img}: {im.width}x{im.height}, its masks are {lab.shape[1]}x{lab.shape[0]}")
            # SCR convention (manifest label_note): the patient's left lung lies on the image right
            if not np.nonzero(ms[0])[1].mean() > lab.shape[1] / 2 > np.nonzero(ms[1])[1].mean():
                side_bad.append(r["case"])
            out = work / "masks" / f"{r['case']}.png"
            Image.fromarray(lab, mode="L").save(out)
            w.writerow([str(img), f"masks/{out.name}"])
            per_case[r["case"]] = over
    if side_bad:
        sys.exit(f"SCR left_lung not on the image right (or right_lung not on the left) in {side_bad}")
    tot = {k: sum(o[k] for o in per_case.values()) for k in next(iter(per_case.values()))}
    note = {"cases": len(rows), "pixel_mm": PIXEL_MM,
            "labels": {"0": "background", "1": "left_lung", "2": "right_lung", "3": "heart"},
            "overlap_rule": "pack_data.py's: 1 + argmax of (left_lung, right_lung, heart) coverage where the "
                            "largest >= 0.5; on the original grid a pixel in several SCR masks takes the first "
                            "(a lung wins over the heart)",
            "overlap_pixels_total": tot, "overlap_pixels_per_case": per_case,
            "cases_with_overlap": sum(o["any"] > 0 for o in per_case.values()),
            "side_check": f"SCR left_lung on the image right in {len(rows)}/{len(rows)} cases"}
    (work / "masks_note.json").write_text(json.dumps(note, indent=1) + "\n")
    print(f"{work / 'masks.csv'}: {len(rows)} cases; pixels in more than one SCR mask: {tot['any']} in "
          f"{note['cases_with_overlap']} cases ({tot['left_lung&heart']} left lung & heart, "
          f"{tot['right_lung&heart']} right lung & heart, {tot['left_lung&right_lung']} left & right lung), "
          "given to the lung")


def card(eval_json: Path, work: Path, out: Path):
    """models/cxr-lungs/evaluation.json: the card's fields from medvision's evaluation.json."""
    if not eval_json.is_file():
        sys.exit(f"{eval_json}: not found (run medvision evaluate --masks first)")
    ev = json.loads(eval_json.read_text())
    if ev.get("task") != "segmentation" or len(ev["models"]) != 1:
        sys.exit(f"{eval_json}: expected one segmentation model")
    m = ev["models"][0]
    ids = [Path(c["case"]).stem for c in ev["cases"]]  # the image's path: JPCLN001.png -> JPCLN001
    note = json.loads((work / "masks_note.json").read_text())
    pkg = json.loads((HERE / "package" / "manifest.json").read_text())
    if (pkg["name"], pkg["version"]) != (m["name"], m["version"]):
        sys.exit(f"{eval_json}: evaluated {m['name']} {m['version']}, "
                 f"the package here is {pkg['name']} {pkg['version']}")
    res = {"model": {"name": m["name"], "version": m["version"], "sha256": pkg["sha256"]},
           "via": "medvision evaluate --masks (models/cxr-lungs/evaluate, docs/evaluate.md)",
           "n": len(ev["cases"]), "pixel_mm": note["pixel_mm"], "units": ev["units"],
           "grid": "original JSRT snapshot grid 384x384",
           "reference": {"what": "SCR masks as one label map (0 background, 1 left_lung, 2 right_lung, 3 heart)",
                         "overlap_rule": note["overlap_rule"],
                         "overlap_pixels_total": note["overlap_pixels_total"],
                         "cases_with_overlap": note["cases_with_overlap"], "side_check": note["side_check"]},
           "options": ev["options"], "cases": ids, "regions": {}}
    for reg in ev["regions"]:
        r = m["regions"][reg]
        dice = [c["models"][0][reg]["dice"] for c in ev["cases"]]
        hd = [c["models"][0][reg]["hd95"] for c in ev["cases"]]
        res["regions"][reg] = {
            "dice": r["dice"], "dice_min": min(dice), "hd95_mm": r["hd95"],
            "hd95_mm_max": max(h for h in hd if h is not None),
            "volume_error_mm2": r["volume_error"], "absolute_volume_error_mm2": r["absolute_volume_error"],
            "relative_volume_error": r["relative_volume_error"],
            "per_case_dice": dict(zip(ids, dice)), "per_case_hd95_mm": dict(zip(ids, hd))}
    fg = ["left_lung", "right_lung", "heart"]
    res["mean_dice_fg_classes"] = float(np.mean([res["regions"][g]["dice"]["mean"] for g in fg]))
    res["mean_dice_regions"] = m["mean_dice"]
    res["note"] = ev["note"]
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{m['name']} {m['version']} via medvision evaluate --masks, n = {res['n']}")
    print("| region | Dice mean (95% CI) | Dice min | HD95 mean (95% CI) mm | HD95 median mm |")
    print("|---|---|---|---|---|")
    for reg, v in res["regions"].items():
        d, h = v["dice"], v["hd95_mm"]
        print(f"| {reg} | {d['mean']:.4f} ({d['lo']:.4f}-{d['hi']:.4f}) | {v['dice_min']:.4f} | "
              f"{h['mean']:.2f} ({h['lo']:.2f}-{h['hi']:.2f}) | {h['median']:.2f} |")
    print(f"mean Dice over {fg}: {res['mean_dice_fg_classes']:.4f}; wrote {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="folder for masks/ and masks.csv (under .devdata/)")
    ap.add_argument("--card", help="medvision's evaluation.json: write --out from it instead")
    ap.add_argument("--out", help="with --card: the model card's evaluation.json")
    a = ap.parse_args()
    work = Path(a.work)
    if a.card:
        if not a.out:
            ap.error("--card needs --out")
        card(Path(a.card), work, Path(a.out))
    else:
        make_masks(work)


if __name__ == "__main__":
    main()
