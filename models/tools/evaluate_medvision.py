#!/usr/bin/python3
"""Scores a committed model package THROUGH MEDVISION (the `medvision classify --json` CLI, i.e.
the C++ decode + preprocessing + LibTorch path users run), on a labelled CSV, with scikit-learn:
AUROC with a bootstrap 95% CI, accuracy / sensitivity / specificity at the package's operating
point (0.5 when it has none), Brier score, and ECE (15 equal-width bins) of the raw and of the
calibrated probability.

  models/tools/evaluate_medvision.py --model cxr-pneumonia --labels .devdata/labels/cxr-pneumonia-evaluation.csv
"""
import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

REPO = Path(__file__).resolve().parents[2]


def ece15(y, p, bins=15):
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(total)


def bootstrap_auroc(y, p, n=1000, seed=20240601):
    rng = np.random.RandomState(seed)
    vals = []
    for _ in range(n):
        i = rng.randint(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        vals.append(roc_auc_score(y[i], p[i]))
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--labels", required=True, help="CSV path,label (label name or normal)")
    ap.add_argument("--cli", default=str(REPO / "build" / "examples" / "medvision"))
    ap.add_argument("--out", help="write the metrics as JSON here")
    args = ap.parse_args()

    with open(args.labels, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [r["path"] for r in rows]
    truth = {r["path"]: r["label"] for r in rows}
    cmd = [args.cli, "classify", "--json", "--batch", "32", "--model", args.model] + paths
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"medvision classify failed ({proc.returncode}): {proc.stderr[-2000:]}")
    results = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    model = results[0]["model"]
    label_names = [e["label"] for e in results[0]["labels"]]
    metrics = {"model": model, "data": args.labels, "n": len(results), "via": "medvision classify --json",
               "labels": {}}
    for name in label_names:
        y, p, pc, dec = [], [], [], []
        for r in results:
            e = next(x for x in r["labels"] if x["label"] == name)
            lab = truth[r["file"]]
            y.append(1 if name.lower() in [s.lower() for s in lab.split("|")] else 0)
            p.append(e["probability"])
            pc.append(e["calibrated"] if e["calibrated"] is not None else np.nan)
            dec.append(e["decision"])
        y, p, pc = np.array(y), np.array(p, float), np.array(pc, float)
        if any(d is None for d in dec):
            d = (p >= 0.5).astype(int)
            rule = "probability >= 0.5 (no operating point in the package)"
        else:
            d = np.array([1 if x else 0 for x in dec])
            rule = "the package's operating point"
        m = {"n": int(len(y)), "positives": int(y.sum()),
             "auroc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None,
             "auroc_ci95": bootstrap_auroc(y, p) if 0 < y.sum() < len(y) else None,
             "accuracy": float((d == y).mean()),
             "sensitivity": float(d[y == 1].mean()) if y.sum() else None,
             "specificity": float(1 - d[y == 0].mean()) if (y == 0).sum() else None,
             "decision_rule": rule,
             "brier": float(brier_score_loss(y, p)), "ece15": ece15(y, p)}
        if not np.isnan(pc).any():
            m["brier_calibrated"] = float(brier_score_loss(y, pc))
            m["ece15_calibrated"] = ece15(y, pc)
        refer = [x for r in results for x in r["labels"] if x["label"] == name and x["refer"]]
        m["referred"] = len(refer)
        metrics["labels"][name] = m
    print(f"{model['name']} {model['version']} on {args.labels} ({len(results)} images, via medvision)")
    print("| label | n | pos | AUROC (95% CI) | acc | sens | spec | ECE raw | ECE calibrated | referred |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, m in metrics["labels"].items():
        ci = m["auroc_ci95"]
        au = f"{m['auroc']:.4f} ({ci[0]:.4f}-{ci[1]:.4f})" if m["auroc"] is not None else "n/a"
        ec = f"{m['ece15_calibrated']:.4f}" if "ece15_calibrated" in m else "-"
        print(f"| {name} | {m['n']} | {m['positives']} | {au} | {m['accuracy']:.3f} | {m['sensitivity']:.3f} | "
              f"{m['specificity']:.3f} | {m['ece15']:.4f} | {ec} | {m['referred']} |")
    if args.out:
        Path(args.out).write_text(json.dumps(metrics, indent=1) + "\n")


if __name__ == "__main__":
    main()
