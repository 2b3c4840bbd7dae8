#!/usr/bin/python3
"""Scores a committed SEGMENTATION package THROUGH MEDVISION (the `medvision segment --npy --json`
CLI, i.e. the C++ decode + preprocessing + LibTorch + sliding-window / map-back path users run) on
the held-out cases of its training split, against the original ground truth on the original grid:
per structure Dice and 95th-percentile Hausdorff distance (mm; scipy distance transforms, the same
definitions as models/common/metrics.py), with a case-level percentile bootstrap 95 % CI of the mean
Dice.

  models/tools/evaluate_segmentation.py cxr-lungs    --cli /path/to/medvision --out models/cxr-lungs/evaluation.json
  models/tools/evaluate_segmentation.py brain-tumour --cli /path/to/medvision --out models/brain-tumour/evaluation.json

cxr-lungs: the 39 validation cases of pack_data.py's JSRT split (patient_split(cases, 0.2, seed
  20240611, strata=nodule)); images = $MEDVISION_DATA/jsrt/images/*.png (384x384: the snapshot was
  downsampled from JSRT's 2048x2048 at 0.175 mm, so 0.175 * 2048 / 384 = 0.9333 mm/pixel); ground
  truth = the SCR masks left_lung / right_lung / heart, each scored as its own binary mask. Labels are
  the patient's sides (SCR convention, manifest label_note): medvision label 1 = left_lung = the SCR
  left_lung mask, which lies on the image right; the tool checks that.
brain-tumour: validation cases case_5 and case_6 (cases 0-4 trained the model); FLAIR + T1 stacked;
  ground truth GT_W.nii.gz (1 mm voxels). medvision's .npy is [slice, row, column] = the NIfTI's
  [k, j, i] (nibabel arrays are [i, j, k]); the tool transposes the ground truth to match.

cxr-lungs --reference NPZ (the training run's val_predictions.npz, 256x256 label maps from the
  <name>.results.tar) also scores those masks on the same 384 grid (nearest-neighbour upsampling) and
  their agreement with medvision's, to separate the effect of the grid/ground truth from the runtime's.
brain-tumour --reference NPZ (the training run's val_predictions.npz: masks on the RAS grid, [z, y, x])
  maps those masks back onto the NIfTI grid and reports their agreement with medvision's (same model,
  different sliding-window layout) and their Dice against GT_W.
--work DIR keeps medvision's outputs there (default: a temporary folder); --reuse skips the medvision
run for cases whose outputs already exist in --work.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import data_root  # noqa: E402
from common.metrics import dice, hd95  # noqa: E402
from common.splits import patient_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SEED = 20240611  # pack_data.py's split seed
JSRT_MM_AT_2048 = 0.175  # JSRT pixel pitch (Shiraishi et al. 2000): 2048 x 0.175 mm = 358.4 mm field


def bootstrap_mean_ci(x, n=2000, seed=20240601):
    x = np.asarray(x, float)
    rng = np.random.RandomState(seed)
    m = [x[rng.randint(0, len(x), len(x))].mean() for _ in range(n)]
    return [float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))]


def run_medvision(cli, model, files, out_dir, extra, log_path):
    cmd = [cli, "segment", "--npy", "--json", "-m", str(model), "--out", str(out_dir)] + extra + [str(f) for f in files]
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.time() - t
    Path(log_path).write_text(proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"medvision segment failed ({proc.returncode}): {' '.join(cmd[:8])} ...\n{proc.stderr[-2000:]}")
    return [json.loads(l) for l in proc.stdout.splitlines() if l.strip()], dt


def lungs_cases(root):
    with open(root / "jsrt" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cases = [r["case"] for r in rows]
    nodule = [int(r["nodule"]) for r in rows]
    is_val = patient_split(cases, 0.2, SEED, strata=nodule)
    return [r for r, v in zip(rows, is_val) if v]


def eval_lungs(args, work):
    from PIL import Image
    root = data_root()
    model = REPO / "models" / "cxr-lungs" / "package"
    rows = lungs_cases(root)
    files = [root / "jsrt" / r["image"] for r in rows]
    todo = [f for f in files if not (args.reuse and (work / (f.stem + ".mask.npy")).exists())]
    elapsed = None
    if todo:
        res, elapsed = run_medvision(args.cli, model, todo, work, ["--threads", str(args.threads)],
                                     work / "medvision.stderr.txt")
        (work / "medvision.jsonl").write_text("".join(json.dumps(r) + "\n" for r in res))
    manifest = json.loads((model / "manifest.json").read_text())
    classes = manifest["labels"]
    structs = {c: [k] for k, c in enumerate(classes) if k > 0}
    structs["lungs_union"] = [1, 2]
    gt_keys = {"left_lung": ["mask_left_lung"], "right_lung": ["mask_right_lung"], "heart": ["mask_heart"],
               "lungs_union": ["mask_left_lung", "mask_right_lung"]}
    per = {s: {"dice": [], "hd95_mm": []} for s in structs}
    swapped = []
    side_ok = 0
    mm = None
    for r, f in zip(rows, files):
        pred = np.load(work / (f.stem + ".mask.npy"))
        assert pred.ndim == 3 and pred.shape[0] == 1, pred.shape
        pred = pred[0].astype(np.int64)
        gts = {k: np.asarray(Image.open(root / "jsrt" / r[k]).convert("L")) > 127
               for k in ("mask_left_lung", "mask_right_lung", "mask_heart")}
        assert pred.shape == gts["mask_heart"].shape, (pred.shape, gts["mask_heart"].shape)
        mm = JSRT_MM_AT_2048 * 2048 / pred.shape[1]
        for s, ks in structs.items():
            p = np.isin(pred, ks)
            g = np.logical_or.reduce([gts[k] for k in gt_keys[s]])
            per[s]["dice"].append(dice(p, g))
            per[s]["hd95_mm"].append(hd95(p, g, (mm, mm)))
        # convention checks: SCR left_lung lies on the image right; swapping L/R must hurt
        w = pred.shape[1]
        if np.nonzero(gts["mask_left_lung"])[1].mean() > w / 2 and np.nonzero(pred == 1)[1].mean() > w / 2:
            side_ok += 1
        swapped.append(np.mean([dice(pred == 1, gts["mask_right_lung"]), dice(pred == 2, gts["mask_left_lung"])]))
    ids = [r["case"] for r in rows]
    ref = None
    if args.reference:
        z = np.load(args.reference)
        rid = [str(i) for i in z["ids"]]
        assert sorted(rid) == sorted(ids), "reference cases differ from the split"
        ref = {s: {"dice_vs_gt": [], "hd95_mm_vs_gt": [], "dice_vs_medvision": []} for s in structs}
        for r, f in zip(rows, files):
            lab = z["pred"][rid.index(r["case"])]
            pred = np.load(work / (f.stem + ".mask.npy"))[0].astype(np.int64)
            h, w = pred.shape
            up = lab[(np.arange(h) * lab.shape[0]) // h][:, (np.arange(w) * lab.shape[1]) // w]
            gts = {k: np.asarray(Image.open(root / "jsrt" / r[k]).convert("L")) > 127
                   for k in ("mask_left_lung", "mask_right_lung", "mask_heart")}
            for s, ks in structs.items():
                g = np.logical_or.reduce([gts[k] for k in gt_keys[s]])
                ref[s]["dice_vs_gt"].append(dice(np.isin(up, ks), g))
                ref[s]["hd95_mm_vs_gt"].append(hd95(np.isin(up, ks), g, (mm, mm)))
                ref[s]["dice_vs_medvision"].append(dice(np.isin(up, ks), np.isin(pred, ks)))
    out = {"structures": {}, "pixel_mm": mm, "grid": "original JSRT snapshot grid 384x384",
           "n": len(rows), "cases": ids}
    md = ["| structure | Dice mean (95% CI) | Dice min | HD95 mean (mm) | HD95 median (mm) |",
          "|---|---|---|---|---|"]
    for s, v in per.items():
        d, h = np.array(v["dice"]), np.array(v["hd95_mm"])
        rec = {"dice_mean": float(d.mean()), "dice_ci95": bootstrap_mean_ci(d), "dice_min": float(d.min()),
               "dice_median": float(np.median(d)), "hd95_mm_mean": float(np.nanmean(h)),
               "hd95_mm_median": float(np.nanmedian(h)), "hd95_mm_max": float(np.nanmax(h)), "n": int(len(d)),
               "per_case_dice": {i: float(x) for i, x in zip(ids, d)},
               "per_case_hd95_mm": {i: float(x) for i, x in zip(ids, h)}}
        out["structures"][s] = rec
        md.append(f"| {s} | {rec['dice_mean']:.4f} ({rec['dice_ci95'][0]:.4f}-{rec['dice_ci95'][1]:.4f}) | "
                  f"{rec['dice_min']:.4f} | {rec['hd95_mm_mean']:.2f} | {rec['hd95_mm_median']:.2f} |")
    if ref is not None:
        out["reference"] = {"source": str(args.reference),
                            "what": "training run's 256x256 validation label maps, nearest-upsampled to 384",
                            "structures": {s: {"dice_vs_gt_mean": float(np.mean(v["dice_vs_gt"])),
                                               "hd95_mm_vs_gt_mean": float(np.nanmean(v["hd95_mm_vs_gt"])),
                                               "dice_vs_medvision_mean": float(np.mean(v["dice_vs_medvision"])),
                                               "dice_vs_medvision_min": float(np.min(v["dice_vs_medvision"]))}
                                           for s, v in ref.items()}}
        md.append("\n| structure | training-run masks (256, upsampled) vs GT 384: Dice / HD95 mm | agreement with "
                  "medvision: Dice mean / min |\n|---|---|---|")
        for s, v in out["reference"]["structures"].items():
            md.append(f"| {s} | {v['dice_vs_gt_mean']:.4f} / {v['hd95_mm_vs_gt_mean']:.2f} | "
                      f"{v['dice_vs_medvision_mean']:.4f} / {v['dice_vs_medvision_min']:.4f} |")
    fg = np.mean([per[c]["dice"] for c in classes[1:]], axis=0)  # per-case mean over the 3 structures
    out["mean_dice_fg_classes"] = float(fg.mean())
    out["mean_dice_fg_classes_ci95"] = bootstrap_mean_ci(fg)
    out["checks"] = {"left_lung_on_image_right_cases": side_ok,
                     "lung_dice_if_left_right_swapped": float(np.mean(swapped))}
    md.append(f"\nmean Dice over {classes[1:]}: {out['mean_dice_fg_classes']:.4f} "
              f"(95% CI {out['mean_dice_fg_classes_ci95'][0]:.4f}-{out['mean_dice_fg_classes_ci95'][1]:.4f}; "
              f"n = {len(rows)} held-out cases; HD95 at {mm:.4f} mm/pixel of the 384x384 grid)")
    md.append(f"checks: SCR left_lung and medvision label 1 both on the image right in {side_ok}/{len(rows)} cases; "
              f"lung Dice with left/right swapped {out['checks']['lung_dice_if_left_right_swapped']:.3f}")
    return out, md, elapsed


BRAIN_CASES = ["case_5", "case_6"]


def eval_brain(args, work):
    import nibabel as nib
    root = data_root() / "brats" / "bratsreg2018-flair-t1"
    model = REPO / "models" / "brain-tumour" / "package"
    per, md = {}, ["| case | subject | Dice | HD95 (mm) | GT voxels | predicted voxels | medvision s |",
                   "|---|---|---|---|---|---|---|"]
    elapsed = {}
    for c in BRAIN_CASES:
        d = root / c
        cw = work / c
        cw.mkdir(parents=True, exist_ok=True)
        npy = cw / "FLAIR.mask.npy"
        if not (args.reuse and npy.exists()):
            _, elapsed[c] = run_medvision(args.cli, model, [d / "FLAIR.nii.gz", d / "T1.nii.gz"], cw,
                                          ["--stack", "--threads", str(args.threads)], cw / "medvision.stderr.txt")
        pred = np.load(npy) > 0.5                       # [k, j, i]
        img = nib.load(str(d / "GT_W.nii.gz"))
        gt = np.asarray(img.dataobj).transpose(2, 1, 0) > 0.5   # nibabel [i, j, k] -> [k, j, i]
        assert pred.shape == gt.shape, (pred.shape, gt.shape)
        zooms = img.header.get_zooms()[:3]
        sp = (float(zooms[2]), float(zooms[1]), float(zooms[0]))
        subj = [l.split(":", 1)[1].strip() for l in (d / "subject_id.txt").read_text().splitlines()
                if l.lower().startswith("subject_id:")][0]
        ref = None
        if args.reference:
            from nibabel import orientations as no
            z = np.load(args.reference)
            shp = tuple(int(v) for v in z[f"shape_{c}"])
            r_zyx = np.unpackbits(z[f"pred_{c}"])[:int(np.prod(shp))].astype(bool).reshape(shp)
            back = no.ornt_transform(no.axcodes2ornt(("R", "A", "S")), no.io_orientation(img.affine))
            r = no.apply_orientation(r_zyx.transpose(2, 1, 0), back).transpose(2, 1, 0).astype(bool)
            ref = {"dice_vs_gt": dice(r, gt), "hd95_mm_vs_gt": hd95(r, gt, sp), "voxels": int(r.sum()),
                   "dice_vs_medvision": dice(r, pred), "voxels_differing": int((r ^ pred).sum())}
        rec = {"subject": subj, "dice": dice(pred, gt), "hd95_mm": hd95(pred, gt, sp), "gt_voxels": int(gt.sum()),
               "pred_voxels": int(pred.sum()), "spacing_mm": list(sp), "medvision_s": elapsed.get(c)}
        if ref is not None:
            rec["training_run_reference"] = ref
        per[c] = rec
        t = f"{rec['medvision_s']:.0f}" if rec["medvision_s"] else "reused"
        md.append(f"| {c} | {subj} | {rec['dice']:.4f} | {rec['hd95_mm']:.2f} | {rec['gt_voxels']} | "
                  f"{rec['pred_voxels']} | {t} |")
    if args.reference:
        md.append("\n| case | training-run window layout: Dice / HD95 mm vs GT | agreement with medvision: Dice "
                  "(voxels differing) |\n|---|---|---|")
        for c, v in per.items():
            r = v["training_run_reference"]
            md.append(f"| {c} | {r['dice_vs_gt']:.4f} / {r['hd95_mm_vs_gt']:.2f} | {r['dice_vs_medvision']:.4f} "
                      f"({r['voxels_differing']}) |")
    out = {"cases": per, "n": len(per), "mean_dice": float(np.mean([v["dice"] for v in per.values()])),
           "mean_hd95_mm": float(np.mean([v["hd95_mm"] for v in per.values()])),
           "goal": "whole-tumour Dice >= 0.80 on held-out cases"}
    out["goal_met_on_mean"] = out["mean_dice"] >= 0.80
    out["goal_met_every_case"] = all(v["dice"] >= 0.80 for v in per.values())
    md.append(f"\nmean Dice {out['mean_dice']:.4f}, mean HD95 {out['mean_hd95_mm']:.2f} mm over {len(per)} "
              f"held-out cases (n = 2: no confidence interval)")
    return out, md, elapsed


def main():
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=["cxr-lungs", "brain-tumour"])
    ap.add_argument("--cli", default=str(REPO / "build" / "examples" / "medvision"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="keep medvision's outputs here (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="reuse outputs already in --work")
    ap.add_argument("--out", help="write the metrics as JSON here")
    ap.add_argument("--reference", help="the training run's val_predictions.npz to compare with")
    args = ap.parse_args()
    tmp = None
    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        work = Path(tmp.name)
    out, md, elapsed = (eval_lungs if args.name == "cxr-lungs" else eval_brain)(args, work)
    pkg = json.loads((REPO / "models" / args.name / "package" / "manifest.json").read_text())
    out = {"model": {"name": pkg["name"], "version": pkg["version"], "sha256": pkg["sha256"]},
           "via": "medvision segment --npy --json (models/tools/evaluate_segmentation.py)",
           "threads": args.threads, "medvision_seconds": elapsed, **out}
    print(f"{pkg['name']} {pkg['version']} via medvision")
    print("\n".join(md))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
