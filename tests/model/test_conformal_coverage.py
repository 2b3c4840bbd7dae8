"""Split conformal prediction sets on real data, end to end through the medvision CLI.

The bundled cxr-pneumonia package is recalibrated into a temporary folder with
`medvision calibrate --method temperature --conformal 0.1` on the calibration half of its validation
split (models/tools/make_label_csv.py; 30% of it is held out for the conformal quantile), then
`medvision classify --json` runs the calibrated copy on the evaluation half, which calibration never
saw. The committed package is not touched. Checks:
  * every result carries a set within {negative, positive}, the one the package's qhat gives for
    the calibrated probability medvision reports;
  * coverage of this one split lies inside the central 99% of its finite-sample distribution: with
    n conformal images and k = ceil((n + 1)(1 - alpha)), the coverage of a fixed split is
    Beta(k, n + 1 - k) and the count covered among m test images beta-binomial(m, k, n + 1 - k).
    With n = 114 its standard deviation is about 3 points, so "within 2 points of 1 - alpha" is
    not a property of a single split of this size;
  * the guarantee itself, on average over splits: the evaluation half's calibrated probabilities
    (from medvision) are split 500 times into n conformal / the rest test images, the quantile
    rule is applied, and the mean coverage must be within 2 points of 1 - alpha.
Prints the coverage and the set-size distribution (MV_CONFORMAL_REPORT=path also writes them as
JSON).
"""
import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.stats import betabinom

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402
PACKAGE = ROOT / "models" / "cxr-pneumonia" / "package"
CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
ALPHA = 0.1


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd[:3]} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def test_conformal_coverage_cxr_pneumonia(tmp_path):
    data_or_skip("kermany/labels.csv")
    labels = tmp_path / "labels"
    run([sys.executable, str(ROOT / "models" / "tools" / "make_label_csv.py"), "cxr-pneumonia",
         "--out", str(labels)])
    package = tmp_path / "package"
    out = run([CLI, "calibrate", "--model", str(PACKAGE), "--labels",
               str(labels / "cxr-pneumonia-calibration.csv"), "--method", "temperature",
               "--conformal", str(ALPHA), "--out", str(package), "--package-version", "test",
               "--device", "cpu"])
    print(out)
    manifest = json.loads((package / "manifest.json").read_text())
    conformal = manifest["calibration"]["conformal"]
    assert conformal["alpha"] == ALPHA and conformal["score"] == "lac"

    with open(labels / "cxr-pneumonia-evaluation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    truth = {r["path"]: r["label"] == "Pneumonia" for r in rows}
    stdout = run([CLI, "classify", "--json", "--batch", "32", "--device", "cpu", "--model",
                  str(package)] + [r["path"] for r in rows])
    results = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert len(results) == len(rows)

    q = conformal["qhat"][0]
    covered, sizes, kinds, p_true = 0, Counter(), Counter(), []
    for r in results:
        assert r["conformal"]["alpha"] == ALPHA
        s = r["conformal"]["labels"]["Pneumonia"]
        assert set(s) <= {"negative", "positive"}
        p = r["labels"][0]["calibrated"]
        if min(abs(p - q), abs(1 - p - q)) > 1e-6:  # float32 in JSON, double inside
            assert s == [a for a, ok in (("negative", p <= q), ("positive", 1 - p <= q)) if ok]
        answer = "positive" if truth[r["file"]] else "negative"
        covered += answer in s
        sizes[len(s)] += 1
        kinds["{" + ", ".join(s) + "}"] += 1
        p_true.append(p if truth[r["file"]] else 1 - p)
    m, n = len(results), conformal["n"]
    coverage = covered / m
    k = int(np.ceil((n + 1) * (1 - ALPHA) - 1e-12))
    lo, hi = betabinom.ppf([0.005, 0.995], m, k, n + 1 - k) / m

    # The marginal guarantee, averaged over random conformal / test splits of the evaluation half.
    scores = 1 - np.asarray(p_true)
    rng = np.random.default_rng(20240601)
    split_cov = []
    for _ in range(500):
        perm = rng.permutation(m)
        cal, test = np.sort(scores[perm[:n]]), scores[perm[n:]]
        split_cov.append(float(np.mean(test <= cal[k - 1])))
    report = {"model": "cxr-pneumonia", "alpha": ALPHA, "qhat": q, "conformal_n": n,
              "evaluation_n": m, "coverage": coverage, "coverage_99_interval": [lo, hi],
              "set_sizes": {str(s): sizes[s] for s in sorted(sizes)}, "sets": dict(kinds),
              "resplit_mean_coverage": float(np.mean(split_cov)),
              "resplit_coverage_5_95": [float(np.percentile(split_cov, 5)),
                                        float(np.percentile(split_cov, 95))]}
    print(json.dumps(report, indent=1))
    if os.environ.get("MV_CONFORMAL_REPORT"):
        Path(os.environ["MV_CONFORMAL_REPORT"]).write_text(json.dumps(report, indent=1) + "\n")
    assert lo <= coverage <= hi, report
    assert abs(report["resplit_mean_coverage"] - (1 - ALPHA)) <= 0.02, report
