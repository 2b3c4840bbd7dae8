#!/usr/bin/python3
"""Faithfulness of medvision's heat maps on real chest X-rays: deletion and insertion curves
(Petsiuk et al. 2018, RISE) of Grad-CAM / Grad-CAM++ / CAM against random maps.

For each image the model calls positive, pixels are ranked by the map; deletion replaces the
top k% with a blurred copy of the image (so no sharp artificial edges), insertion starts from the
blurred image and restores the top k% (k = 0, 10, ..., 100). The model's probability for the
label is read back through `medvision classify --json`. A faithful map makes the probability
fall fast under deletion (low area under the curve) and rise fast under insertion (high area).
Everything (maps and probabilities) goes through the medvision CLI.

  benchmarks/explain_faithfulness.py [--cli build/examples/medvision] [--n 24]
"""
import argparse
import csv
import json
import os
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = np.linspace(0.0, 1.0, 11)


def classify(cli, model, files):
    out = subprocess.run([cli, "classify", "--json", "--batch", "32", "--model", model] + files,
                         check=True, capture_output=True, text=True).stdout
    probs = {}
    for line in out.splitlines():
        r = json.loads(line)
        probs[r["file"]] = r["labels"][0]["probability"]
    return [probs[f] for f in files]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=str(ROOT / "build" / "examples" / "medvision"))
    ap.add_argument("--model", default=str(ROOT / "models" / "cxr-pneumonia" / "package"))
    ap.add_argument("--labels", default=str(ROOT / ".devdata" / "labels" / "cxr-pneumonia-evaluation.csv"))
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explain_faithfulness.json"))
    args = ap.parse_args()
    with open(args.labels, newline="") as f:
        paths = [r["path"] for r in csv.DictReader(f) if r["label"] != "normal"]
    rng = np.random.RandomState(0)
    paths = [paths[i] for i in rng.permutation(len(paths))[: args.n]]
    methods = ["gradcam", "gradcam++", "cam", "random"]
    curves = {m: {"deletion": [], "insertion": []} for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i, p in enumerate(paths):
            img = cv2.imread(p, cv2.IMREAD_GRAYSCALE).astype(np.float32)
            blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=img.shape[1] / 16)
            maps = {}
            for m in methods[:-1]:
                npy = tmp / f"{i}-{m}.npy"
                subprocess.run([args.cli, "explain", p, "--model", args.model, "--method", m,
                                "--out", str(tmp / "o.png"), "--npy", str(npy)],
                               check=True, capture_output=True)
                maps[m] = np.load(npy)
            maps["random"] = rng.rand(*img.shape).astype(np.float32)
            files, index = [], []
            for m, sal in maps.items():
                # Ties (e.g. zeros) broken at random so that no method gets a free ordering.
                order = np.lexsort((rng.rand(sal.size), -sal.ravel()))
                for mode in ("deletion", "insertion"):
                    for k, frac in enumerate(FRACTIONS):
                        top = order[: int(round(frac * sal.size))]
                        a = (img if mode == "deletion" else blurred).copy().ravel()
                        a[top] = (blurred if mode == "deletion" else img).ravel()[top]
                        f = tmp / f"{i}-{m}-{mode}-{k}.png"
                        cv2.imwrite(str(f), np.clip(a.reshape(img.shape), 0, 255).astype(np.uint8))
                        files.append(str(f))
                        index.append((m, mode))
            probs = classify(args.cli, args.model, files)
            j = 0
            for m in methods:
                for mode in ("deletion", "insertion"):
                    curves[m][mode].append(probs[j:j + len(FRACTIONS)])
                    j += len(FRACTIONS)
    result = {"model": args.model, "images": len(paths), "fractions": FRACTIONS.tolist(), "methods": {}}
    print(f"{len(paths)} pneumonia-positive chest X-rays (evaluation half), model {args.model}")
    print("| map | deletion AUC (lower = more faithful) | insertion AUC (higher = more faithful) |")
    print("|---|---|---|")
    for m in methods:
        d = np.array(curves[m]["deletion"]).mean(0)
        ins = np.array(curves[m]["insertion"]).mean(0)
        auc_d, auc_i = float(np.trapz(d, FRACTIONS)), float(np.trapz(ins, FRACTIONS))
        per_d = [float(np.trapz(c, FRACTIONS)) for c in curves[m]["deletion"]]
        per_i = [float(np.trapz(c, FRACTIONS)) for c in curves[m]["insertion"]]
        result["methods"][m] = {"deletion_curve": d.tolist(), "insertion_curve": ins.tolist(),
                                "deletion_auc": auc_d, "insertion_auc": auc_i,
                                "deletion_auc_per_image": per_d, "insertion_auc_per_image": per_i}
        print(f"| {m} | {auc_d:.3f} | {auc_i:.3f} |")
    for m in methods[:-1]:
        wd = np.mean(np.array(result["methods"][m]["deletion_auc_per_image"]) <
                     np.array(result["methods"]["random"]["deletion_auc_per_image"]))
        wi = np.mean(np.array(result["methods"][m]["insertion_auc_per_image"]) >
                     np.array(result["methods"]["random"]["insertion_auc_per_image"]))
        result["methods"][m]["beats_random_deletion_fraction"] = float(wd)
        result["methods"][m]["beats_random_insertion_fraction"] = float(wi)
        print(f"{m}: beats the random map on {100 * wd:.0f}% of images (deletion), {100 * wi:.0f}% (insertion)")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
