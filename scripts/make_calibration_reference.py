#!/usr/bin/python3
"""Writes the reference values tests/unit/calibrate compares medvision::calibrate against,
computed independently with scikit-learn, numpy and scipy on the same predictions.

Usage: make_calibration_reference.py OUT_JSON
Run by CTest as the fixture of unit_calibrate. Needs Debian's /usr/bin/python3 with numpy,
scipy and scikit-learn (python3-sklearn 1.2).

Definitions the numpy references implement (docs/calibration.md):
  ECE / MCE, equal width: edges = linspace(0, 1, B + 1), bin = searchsorted(edges[1:-1], p, "right"),
    ECE = sum_b n_b / N |mean(y_b) - mean(p_b)|, MCE = max over non-empty bins.
  adaptive ECE: stable argsort of p, np.array_split into B runs, same sum.
"""
import json
import sys

import numpy as np
import scipy.optimize
import sklearn
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score


def ece_width(y, p, bins=15):
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="right")
    ece, mce = 0.0, 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            gap = abs(y[m].mean() - p[m].mean())
            ece += m.sum() / len(p) * gap
            mce = max(mce, gap)
    return ece, mce


def ece_mass(y, p, bins=15):
    order = np.argsort(p, kind="stable")
    ece = 0.0
    for run in np.array_split(order, bins):
        if len(run):
            ece += len(run) / len(p) * abs(y[run].mean() - p[run].mean())
    return ece


def binary_case(name, y, p):
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    ece, mce = ece_width(y, p)
    return {
        "name": name,
        "y": y.tolist(),
        "p": p.tolist(),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p)),
        "roc_auc": float(roc_auc_score(y, p)),
        "ece": float(ece),
        "mce": float(mce),
        "adaptive_ece": float(ece_mass(y, p)),
        "ece_10": float(ece_width(y, p, 10)[0]),
        "adaptive_ece_7": float(ece_mass(y, p, 7)),
    }


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(7)
    cases = []
    # A calibrated-ish random model.
    z = rng.normal(0, 2, 500)
    y = (rng.random(500) < 1 / (1 + np.exp(-z))).astype(int)
    cases.append(binary_case("random", y, 1 / (1 + np.exp(-1.7 * z))))
    # Heavy ties: probabilities rounded to one decimal, plus exact bin edges and 0 / 1.
    p = np.round(rng.random(400), 1)
    y = (rng.random(400) < p).astype(int)
    p[:6] = [0.0, 1.0, 1 / 15, 2 / 15, 14 / 15, 0.5]
    cases.append(binary_case("ties", y, p))
    # Extreme probabilities (log loss clipping at float64 eps).
    p = np.array([0.0, 1.0, 1e-20, 1 - 1e-17, 0.3, 0.999999, 1e-300, 0.5])
    y = np.array([1, 0, 0, 1, 1, 0, 1, 0])
    cases.append(binary_case("extreme", y, p))
    # Small, unbalanced.
    cases.append(binary_case("small", [0, 0, 1, 1, 0, 1, 0], [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.05]))

    # Multi-class log loss.
    logits = rng.normal(0, 1.5, (300, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[0] = [1.0, 0.0, 0.0, 0.0]
    labels = rng.integers(0, 4, 300)
    labels[0] = 1
    multiclass = {"probs": probs.ravel().tolist(), "k": 4, "y": labels.tolist(),
                  "log_loss": float(log_loss(labels, probs, labels=[0, 1, 2, 3]))}

    # Isotonic regression with ties in x, predictions inside, on and outside the range.
    x = np.round(rng.random(300), 2)
    t = (rng.random(300) < x ** 2).astype(float)
    test_x = np.concatenate([np.linspace(-0.1, 1.1, 121), x[:20]])
    iso = IsotonicRegression(out_of_bounds="clip").fit(x, t)
    isotonic = {"x": x.tolist(), "y": t.tolist(), "test": test_x.tolist(),
                "predict": iso.predict(test_x).tolist()}

    # Temperature of a sigmoid label, the NLL minimised by scipy (bounded Brent on log T).
    z = rng.normal(0, 1.5, 2000)
    yb = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    zs = 2.5 * z

    def nll(u):
        s = zs * np.exp(-u)
        return np.mean(np.logaddexp(0, s) - yb * s)

    res = scipy.optimize.minimize_scalar(nll, bounds=(np.log(0.01), np.log(100)),
                                         method="bounded", options={"xatol": 1e-12})
    temperature = {"logits": zs.tolist(), "y": yb.astype(int).tolist(),
                   "temperature": float(np.exp(res.x))}

    with open(out, "w") as f:
        json.dump({"sklearn": sklearn.__version__, "binary": cases, "multiclass": multiclass,
                   "isotonic": isotonic, "temperature": temperature}, f)


if __name__ == "__main__":
    main()
