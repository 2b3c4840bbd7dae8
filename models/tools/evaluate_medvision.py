#!/usr/bin/python3
"""Scores a committed model package THROUGH MEDVISION (the `medvision classify --json` CLI, i.e.
the C++ decode + preprocessing + LibTorch path users run), on a labelled CSV, with scikit-learn:
AUROC with a bootstrap 95% CI, accuracy / sensitivity / specificity at the package's operating
point (0.5 when it has none), Brier score, and ECE (15 equal-width bins) of the raw and of the
calibrated probability.

--reduced-precision is passed through to `medvision classify` (bf16 on CPU, fp16 on CUDA); --threads
too. --predictions CSV writes the per-image probabilities and decisions; --compare CSV (such a file
from another run, e.g. fp32) adds max / mean |delta probability| and the decisions that flip.
The wall time of the classify run is recorded, and the CLI's warnings (e.g. a bf16 -> fp32 fallback).

  models/tools/evaluate_medvision.py --model cxr-pneumonia --labels .devdata/labels/cxr-pneumonia-evaluation.csv
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time
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
    ap.add_argument("--reduced-precision", action="store_true", help="pass --reduced-precision to medvision")
    ap.add_argument("--threads", type=int, default=0, help="pass --threads to medvision (0: its default)")
    ap.add_argument("--predictions", help="write per-image probabilities/decisions as CSV here")
    ap.add_argument("--compare", help="a --predictions CSV of a reference run to compare with")
    args = ap.parse_args()

    with open(args.labels, newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [r["path"] for r in rows]
    truth = {r["path"]: r["label"] for r in rows}
    cmd = [args.cli, "classify", "--json", "--batch", "32", "--model", args.model]
    if args.reduced_precision:
        cmd.append("--reduced-precision")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t0 = time.time()
    proc = subprocess.run(cmd + paths, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        sys.exit(f"medvision classify failed ({proc.returncode}): {proc.stderr[-2000:]}")
    results = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    model = results[0]["model"]
    label_names = [e["label"] for e in results[0]["labels"]]
    warn = sorted({w for r in results for w in (r.get("warnings") or [])} |
                  {l.strip() for l in proc.stderr.splitlines() if l.strip()})
    metrics = {"model": model, "data": args.labels, "n": len(results), "via": "medvision classify --json",
               "reduced_precision": bool(args.reduced_precision), "threads": args.threads or None,
               "classify_wall_s": wall, "classify_ms_per_image": 1000.0 * wall / max(len(results), 1),
               "cli_warnings": warn, "labels": {}}
    pred_rows = []
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
        pred_rows += [{"file": r["file"], "label": name, "probability": repr(float(pp)),
                       "decision": "" if dd is None else int(bool(dd))} for r, pp, dd in zip(results, p, dec)]
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
    if args.predictions:
        with open(args.predictions, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["file", "label", "probability", "decision"])
            w.writeheader()
            w.writerows(pred_rows)
    if args.compare:
        with open(args.compare, newline="") as f:
            ref = {(r["file"], r["label"]): r for r in csv.DictReader(f)}
        cmp = {"reference": args.compare, "labels": {}}
        for name in metrics["labels"]:
            mine = [r for r in pred_rows if r["label"] == name and (r["file"], name) in ref]
            dp = np.array([abs(float(r["probability"]) - float(ref[(r["file"], name)]["probability"])) for r in mine])
            flips = [r["file"] for r in mine if str(r["decision"]) != ref[(r["file"], name)]["decision"]]
            cmp["labels"][name] = {"n": len(mine), "max_abs_dp": float(dp.max()), "mean_abs_dp": float(dp.mean()),
                                   "p99_abs_dp": float(np.percentile(dp, 99)),
                                   "decision_flips": len(flips), "flipped": flips}
            print(f"{name}: vs {args.compare}: max |dp| {dp.max():.3g}, mean |dp| {dp.mean():.3g}, "
                  f"{len(flips)} decision flips of {len(mine)}")
        metrics["compare"] = cmp
    print(f"{model['name']} {model['version']} on {args.labels} ({len(results)} images, via medvision"
          f"{', --reduced-precision' if args.reduced_precision else ''}); classify {wall:.1f} s "
          f"({metrics['classify_ms_per_image']:.1f} ms/image incl. decode and start-up)")
    for w in warn:
        print(f"medvision warning: {w}")
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
