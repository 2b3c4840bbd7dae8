#!/usr/bin/env python3
"""Workstation-side evaluation of a GPU run's outputs (sklearn / scipy).

  python3 models/tools/evaluate.py cxr-pneumonia RESULTS [--data .devdata/cxr-pneumonia/pack.npz]

RESULTS is the <name>.results.tar from run_gpu.sh (or a directory holding metrics.json and
val_predictions.*). Recomputes, on the internal validation split:
  classification: per label AUROC (sklearn) with a 2000x percentile-bootstrap 95 % CI, ECE (15 bins),
    Brier, accuracy / sensitivity / specificity at p = 0.5, the trivial baseline, by-source AUROC;
  segmentation: per class Dice and HD95 (scipy distance transforms; mm) from the predicted masks.
Writes evaluation.json and evaluation.md (a table for the model card) next to RESULTS
(or --out DIR).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import devdata_dir, log  # noqa: E402
from common.metrics import auroc_ci_sklearn, dice, ece_binary, hd95, sigmoid  # noqa: E402
from common.packio import load_pack  # noqa: E402

PACK = {"cxr-pneumonia": "cxr-pneumonia", "cxr-findings": "cxr-findings", "cxr-edema": "cxr-findings",
        "cxr-lungs": "cxr-lungs", "brain-tumour": "brain-tumour"}


def eval_classification(res: Path, n_boot: int):
    rows = list(csv.DictReader(open(res / "val_predictions.csv")))
    labels = [c[len("label_"):] for c in rows[0] if c.startswith("label_")]
    out, md = {"labels": {}}, ["| label | n | pos | AUROC (95% CI) | acc@0.5 | sens | spec | ECE15 | Brier |",
                               "|---|---|---|---|---|---|---|---|---|"]
    sources = sorted({r["source"] for r in rows})
    md_base = []
    for lab in labels:
        y = np.array([int(r[f"label_{lab}"]) for r in rows])
        z = np.array([float(r[f"logit_{lab}"]) for r in rows])
        p = sigmoid(z)
        a, lo, hi = auroc_ci_sklearn(y, p, n_boot)
        pred = p >= 0.5
        rec = {"n": int(len(y)), "positives": int(y.sum()), "auroc": a, "auroc_ci95": [lo, hi],
               "accuracy": float((pred == y).mean()),
               "sensitivity": float(pred[y == 1].mean()) if y.sum() else float("nan"),
               "specificity": float((~pred[y == 0]).mean()) if (y == 0).sum() else float("nan"),
               "ece15": ece_binary(y, p, 15), "brier": float(np.mean((p - y) ** 2)),
               "baseline": {"auroc": 0.5, "accuracy_all_negative": float(1 - y.mean()),
                            "brier_prevalence": float(y.mean() * (1 - y.mean()))}}
        if len(sources) > 1:
            rec["by_source"] = {}
            for s in sources:
                m = np.array([r["source"] == s for r in rows])
                aa = auroc_ci_sklearn(y[m], p[m], n_boot)
                rec["by_source"][s] = {"n": int(m.sum()), "positives": int(y[m].sum()), "auroc": aa[0],
                                       "auroc_ci95": [aa[1], aa[2]]}
        out["labels"][lab] = rec
        md.append(f"| {lab} | {rec['n']} | {rec['positives']} | {a:.3f} ({lo:.3f}-{hi:.3f}) | {rec['accuracy']:.3f} | "
                  f"{rec['sensitivity']:.3f} | {rec['specificity']:.3f} | {rec['ece15']:.3f} | {rec['brier']:.3f} |")
        md_base.append(f"| {lab} (trivial baseline) | {rec['n']} | {rec['positives']} | 0.5 | "
                       f"{rec['baseline']['accuracy_all_negative']:.3f} (all negative) | 0 | 1 | - | "
                       f"{rec['baseline']['brier_prevalence']:.3f} (prevalence) |")
    if len(labels) <= 2:
        md += md_base
    aucs = [r["auroc"] for r in out["labels"].values() if not np.isnan(r["auroc"])]
    out["mean_auroc"] = float(np.mean(aucs)) if aucs else float("nan")
    md.append(f"\nmean AUROC {out['mean_auroc']:.3f}; baseline (constant score) AUROC 0.5")
    return out, md


def eval_lungs(res: Path, pack: Path):
    meta, a = load_pack(pack, names=["labels"])
    classes = meta["classes"]
    ids = meta["ids"]
    z = np.load(res / "val_predictions.npz")
    pred, vids = z["pred"], [str(s) for s in z["ids"]]
    gt = a["labels"][[ids.index(i) for i in vids]]
    mm = meta.get("pixel_mm_at_256", 1.4)
    per = {}
    md = ["| structure | Dice mean | Dice min | HD95 mean (mm) | HD95 median (mm) |", "|---|---|---|---|---|"]
    structs = {c: [k] for k, c in enumerate(classes) if k > 0}
    structs["lungs_union"] = [1, 2]
    for name, ks in structs.items():
        d = [dice(np.isin(pred[i], ks), np.isin(gt[i], ks)) for i in range(len(vids))]
        h = [hd95(np.isin(pred[i], ks), np.isin(gt[i], ks), (mm, mm)) for i in range(len(vids))]
        per[name] = {"dice_mean": float(np.mean(d)), "dice_min": float(np.min(d)), "hd95_mm_mean": float(np.nanmean(h)),
                     "hd95_mm_median": float(np.nanmedian(h)), "n": len(vids)}
        md.append(f"| {name} | {per[name]['dice_mean']:.4f} | {per[name]['dice_min']:.4f} | "
                  f"{per[name]['hd95_mm_mean']:.2f} | {per[name]['hd95_mm_median']:.2f} |")
    fg = [per[c]["dice_mean"] for c in classes[1:]]
    out = {"structures": per, "mean_dice_fg_classes": float(np.mean(fg)), "pixel_mm": mm}
    md.append(f"\nmean Dice over {classes[1:]}: {out['mean_dice_fg_classes']:.4f} (n = {len(vids)} held-out cases; "
              f"HD95 in mm at {mm:.2f} mm/pixel of the 256x256 grid)")
    return out, md


def eval_brain(res: Path, pack: Path):
    meta, a = load_pack(pack)
    z = np.load(res / "val_predictions.npz")
    per = {}
    md = ["| case | subject | Dice | HD95 (mm) | GT voxels | predicted voxels |", "|---|---|---|---|---|---|"]
    for rec in meta["cases"]:
        c = rec["case"]
        if f"pred_{c}" not in z.files:
            continue
        shp = tuple(int(s) for s in z[f"shape_{c}"])
        pred = np.unpackbits(z[f"pred_{c}"])[:int(np.prod(shp))].astype(bool).reshape(shp)
        gt = np.zeros(rec["full_shape"], bool)
        sl = tuple(slice(lo, hi) for lo, hi in zip(rec["bbox_lo"], rec["bbox_hi"]))
        if shp == tuple(rec["full_shape"]):
            gt[sl] = a[f"gt_{c}"]
        else:  # smoke runs evaluate on the (downsampled) crop
            gt = a[f"gt_{c}"][::4, ::4, ::4]
        d, h = dice(pred, gt), hd95(pred, gt, tuple(rec["spacing_zyx"]))
        per[c] = {"subject": rec["subject"], "dice": d, "hd95_mm": h, "gt_voxels": int(gt.sum()),
                  "pred_voxels": int(pred.sum())}
        md.append(f"| {c} | {rec['subject']} | {d:.4f} | {h:.2f} | {int(gt.sum())} | {int(pred.sum())} |")
    out = {"cases": per, "mean_dice": float(np.mean([v["dice"] for v in per.values()])),
           "mean_hd95_mm": float(np.nanmean([v["hd95_mm"] for v in per.values()]))}
    md.append(f"\nmean Dice {out['mean_dice']:.4f}, mean HD95 {out['mean_hd95_mm']:.2f} mm over {len(per)} held-out cases")
    return out, md


def main():
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=list(PACK))
    ap.add_argument("results", help="<name>.results.tar or a directory")
    ap.add_argument("--data", default=None, help="pack file (default .devdata/<pack>/pack.npz)")
    ap.add_argument("--out", default=None, help="where to write evaluation.json/.md")
    ap.add_argument("--n-boot", type=int, default=2000)
    args = ap.parse_args()
    src = Path(args.results)
    tmp = None
    if src.is_file():
        tmp = tempfile.TemporaryDirectory()
        with tarfile.open(src) as t:
            t.extractall(tmp.name)
        res = Path(tmp.name)
        out_dir = Path(args.out) if args.out else src.parent / (src.name.split(".")[0] + "-eval")
    else:
        res = src
        out_dir = Path(args.out) if args.out else src
    out_dir.mkdir(parents=True, exist_ok=True)
    pack = Path(args.data) if args.data else devdata_dir() / PACK[args.name] / "pack.npz"
    metrics = json.loads((res / "metrics.json").read_text()) if (res / "metrics.json").exists() else {}
    if args.name in ("cxr-pneumonia", "cxr-findings", "cxr-edema"):
        ev, md = eval_classification(res, args.n_boot)
        if metrics.get("init_model_val"):
            ev["init_model_val_from_training"] = {k: {"auroc": v["auroc"], "auroc_ci95": v["auroc_ci95"]}
                                                  for k, v in metrics["init_model_val"].items()}
            md.append("\ninit model (before fine-tuning) on the same images: " + ", ".join(
                f"{k} AUROC {v['auroc']:.3f} ({v['auroc_ci95'][0]:.3f}-{v['auroc_ci95'][1]:.3f})"
                for k, v in metrics["init_model_val"].items()))
    elif args.name == "cxr-lungs":
        ev, md = eval_lungs(res, pack)
    else:
        ev, md = eval_brain(res, pack)
    ev["model"] = args.name
    ev["training_run"] = {k: metrics.get(k) for k in ("device_name", "torch", "epochs_run", "selected",
                                                      "selected_epoch", "elapsed_s", "smoke")}
    (out_dir / "evaluation.json").write_text(json.dumps(ev, indent=2) + "\n")
    (out_dir / "evaluation.md").write_text("\n".join(md) + "\n")
    log("\n".join(md))
    log(f"[evaluate] wrote {out_dir}/evaluation.json and evaluation.md")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
