#!/usr/bin/python3
"""`medvision calibrate --prior-shift` on prevalence-shifted validation data (issue 18).

Takes the cxr-pneumonia evaluation half (.devdata/labels/cxr-pneumonia-evaluation.csv, made by
`models/tools/make_label_csv.py cxr-pneumonia --out .devdata/labels`), subsamples it to a
pneumonia prevalence of 0.25, 0.5 and 0.75 (N images each, seeded), and for each:
  1. `medvision calibrate --model PKG --prior-shift FOLDER --out ADAPTED` on the images alone
     (labels unseen);
  2. `medvision evaluate --model PKG --model ADAPTED --labels CSV` on the same images with their
     labels: ECE and Brier of the calibrated probabilities, uncorrected (PKG) and corrected
     (ADAPTED), and the accuracy at the operating point (the same for both by construction).
  3. the same metrics with the correction at the *true* prevalence (an oracle, computed here from
     the calibrated probabilities through the Python bindings, build/python), which separates
     the estimate's error from the correction's own.
Prints a Markdown table (docs/calibration.md, "Prior shift") and writes it with the raw numbers to
OUT/prior-shift-demo.json.

  scripts/prior_shift_demo.py [--n 128] [--out .devdata/prior-shift-demo]
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "python"))


def ece15(y, p, bins=15):
    """Equal-width 15-bin ECE (docs/calibration.md, "Metrics")."""
    import numpy as np
    idx = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum((idx == b).mean() * abs(y[idx == b].mean() - p[idx == b].mean())
                     for b in range(bins) if (idx == b).any()))


def oracle(package, paths, y, ps, pt):
    """ECE and Brier of the package's calibrated probabilities corrected at the true prior."""
    import numpy as np
    import medvision as mv
    model = mv.Model(str(package))
    p = np.array([r.scores[0].calibrated for r in model.classify(paths, batch_size=16)])
    y = np.asarray(y, float)
    r = (pt / ps) / ((1 - pt) / (1 - ps))
    q = r * p / (r * p + 1 - p)
    return {"ece": ece15(y, q), "brier": float(np.mean((q - y) ** 2))}


def run(cli, *args):
    r = subprocess.run([cli, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"medvision {' '.join(map(str, args[:1]))} failed:\n{r.stderr}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labels", default=ROOT / ".devdata/labels/cxr-pneumonia-evaluation.csv")
    ap.add_argument("--package", default=ROOT / "models/cxr-pneumonia/package")
    ap.add_argument("--cli", default=os.environ.get("MV_CLI", ROOT / "build/examples/medvision"))
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--out", default=ROOT / ".devdata/prior-shift-demo")
    a = ap.parse_args()
    with open(a.labels, newline="") as f:
        rows = list(csv.DictReader(f))
    pos = [r["path"] for r in rows if r["label"] == "Pneumonia"]
    neg = [r["path"] for r in rows if r["label"] != "Pneumonia"]
    src = json.loads((Path(a.package) / "manifest.json").read_text())
    fo = src["calibration"]["fitted_on"]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(a.seed)
    table = []
    for prev in (0.25, 0.5, 0.75):
        tag = f"prev{int(prev * 100):02d}"
        d = out / tag
        images = d / "images"
        images.mkdir(parents=True, exist_ok=True)
        k = int(round(prev * a.n))
        chosen = [(p, 1) for p in rng.sample(pos, k)] + [(p, 0) for p in rng.sample(neg, a.n - k)]
        for old in images.iterdir():
            old.unlink()
        with open(d / "labels.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for i, (p, y) in enumerate(chosen):
                link = images / f"{i:04d}-{Path(p).name}"
                link.symlink_to(p)
                w.writerow([str(link), "Pneumonia" if y else "normal"])
        adapted = d / "package"
        if adapted.exists():
            for f in adapted.iterdir():
                f.unlink()
            adapted.rmdir()
        cal = run(a.cli, "calibrate", "--model", a.package, "--prior-shift", images, "--out",
                  adapted)
        ev = run(a.cli, "evaluate", "--model", a.package, "--model", adapted, "--labels",
                 d / "labels.csv", "--out", d / "evaluation", "--bootstrap", "200")
        e = json.loads((d / "evaluation" / "evaluation.json").read_text())
        m = json.loads((adapted / "manifest.json").read_text())
        ps = m["calibration"]["prior_shift"]
        row = {"true_prevalence": k / a.n, "n": a.n,
               "estimated": ps["target_prior"][0], "lr_p_value": ps["lr_test"]["p_value"],
               "iterations": ps["iterations"], "drift": None}
        report = json.loads((adapted / "prior-shift-report.json").read_text())
        if report.get("drift"):
            dl = report["drift"]["labels"][0]
            row["drift"] = {"ks": dl["ks"], "p_value": dl["p_value"], "psi": dl["psi"],
                            "shifted": dl["shifted"]}
        if report.get("label_shift_fit"):
            fl = report["label_shift_fit"]["labels"][0]
            row["label_shift_fit"] = {"ks": fl["ks"], "p_value": fl["p_value"]}
        for name, mm in zip(("uncorrected", "corrected"), e["models"]):
            lab = mm["labels"]["Pneumonia"]
            op = lab.get("operating_point") or {}
            row[name] = {"ece": lab["calibrated"]["ece"], "brier": lab["calibrated"]["brier"],
                         "accuracy": op.get("accuracy")}
        row["oracle"] = oracle(a.package, [str(images / f"{i:04d}-{Path(p).name}")
                                           for i, (p, _) in enumerate(chosen)],
                               [yy for _, yy in chosen], ps["source_prior"][0], k / a.n)
        row["calibrate_stdout"] = cal.stdout
        table.append(row)
        print(cal.stdout, file=sys.stderr)
    src_prev = fo["positives"][0] / fo["n"]
    lines = [f"cxr-pneumonia {src['version']} (calibration-set prevalence {src_prev:.3f}), "
             f"{a.n} images per row from the evaluation half, seed {a.seed}:", "",
             "| true prevalence | estimated | LR test p | ECE uncorrected | ECE corrected | "
             "ECE at true prior | Brier uncorrected | Brier corrected | Brier at true prior | "
             "accuracy (both) | drift KS / PSI | KS vs reweighted reference (p) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        u, c, o, dr = r["uncorrected"], r["corrected"], r["oracle"], r["drift"]
        lf = r.get("label_shift_fit")
        fit = "-" if lf is None else f"{lf['ks']:.3f} ({lf['p_value']:.2g})"
        acc = "-" if u["accuracy"] is None else f"{u['accuracy']:.3f}"
        drift = "-" if dr is None else (f"{dr['ks']:.3f} / {dr['psi']:.3f}"
                                        f"{' (shifted)' if dr['shifted'] else ''}")
        lines.append(f"| {r['true_prevalence']:.2f} | {r['estimated']:.3f} | "
                     f"{r['lr_p_value']:.2g} | {u['ece']:.4f} | {c['ece']:.4f} | {o['ece']:.4f} | "
                     f"{u['brier']:.4f} | {c['brier']:.4f} | {o['brier']:.4f} | {acc} | "
                     f"{drift} | {fit} |")
    text = "\n".join(lines)
    print(text)
    (out / "prior-shift-demo.json").write_text(json.dumps({"rows": table, "table": text},
                                                          indent=2))


if __name__ == "__main__":
    main()
