"""medvision.evaluate and `medvision evaluate` against independent references.

* Synthetic scores (seeded, with ties) given to the bundled cxr-pneumonia package as raw outputs:
  AUROC, average precision, ROC and precision-recall curves, Brier, log loss and confusion counts
  equal scikit-learn's; ECE and adaptive ECE equal a numpy implementation of docs/calibration.md;
  the refer band's counts, the threshold reaching a target sensitivity, and DeLong's test equal a
  numpy reference that uses the O(m n) kernel form of DeLong et al. (1988), not the mid-rank form
  of the library (Sun & Xu 2014). Conformal coverage of a package recalibrated with conformal
  sets equals the sets recomputed from its qhat.
* A small real run: 40 Kermany images (20 normal, 20 pneumonia) through the CLI with two models
  (the package and a copy without calibration or thresholds); evaluation.json equals what
  medvision.evaluate returns on the same raw outputs, its metrics equal scikit-learn's on them, and
  report.html is self-contained (no scripts, no external links).
"""
import csv
import json
import math
import shutil
import subprocess

import numpy as np
import pytest
from conftest import CLI, ROOT, kermany, tool
from scipy.stats import norm
from sklearn.metrics import (average_precision_score, brier_score_loss, confusion_matrix,
                             log_loss, precision_recall_curve, roc_auc_score, roc_curve)

PACKAGE = ROOT / "models" / "cxr-pneumonia" / "package"
LABEL = "Pneumonia"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def ece_width(y, p, bins=15):
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.searchsorted(edges[1:-1], p, side="right")
    return sum((idx == b).sum() / len(p) * abs(y[idx == b].mean() - p[idx == b].mean())
               for b in range(bins) if (idx == b).any())


def ece_mass(y, p, bins=15):
    order = np.argsort(p, kind="stable")
    return sum(len(r) / len(p) * abs(y[r].mean() - p[r].mean())
               for r in np.array_split(order, bins) if len(r))


def delong_numpy(y, a, b):
    """DeLong et al. (1988) with the kernel psi(x, y) = 1 if x > y, 1/2 if equal, 0 otherwise."""
    pos, neg = y == 1, y == 0
    v10, v01, aucs = [], [], []
    for s in (a, b):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    s = np.cov(np.vstack(v10)) / pos.sum() + np.cov(np.vstack(v01)) / neg.sum()
    se = math.sqrt(max(0.0, s[0, 0] + s[1, 1] - 2 * s[0, 1]))
    if se == 0:  # two monotone transforms of one score: no difference to test
        return aucs, se, math.nan, 1.0, s
    z = (aucs[0] - aucs[1]) / se
    return aucs, se, z, 2 * norm.sf(abs(z)), s


def counts(y, p, t):
    tn, fp, fn, tp = confusion_matrix(y, (p >= t).astype(int), labels=[0, 1]).ravel()
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn}


def check_rates(c, y, p, t):
    assert c["threshold"] == pytest.approx(t, abs=1e-12)
    want = counts(y, p, t)
    for k, v in want.items():
        assert c[k] == v, k
    assert c["sensitivity"] == pytest.approx(want["tp"] / (want["tp"] + want["fn"]))
    assert c["specificity"] == pytest.approx(want["tn"] / (want["tn"] + want["fp"]))
    assert c["ppv"] == pytest.approx(want["tp"] / (want["tp"] + want["fp"]))
    assert c["npv"] == pytest.approx(want["tn"] / (want["tn"] + want["fn"]))
    assert c["accuracy"] == pytest.approx((want["tp"] + want["tn"]) / len(y))


def calibrated(manifest, z):
    """The manifest's calibration applied in numpy to raw logits z (label 0): temperature
    sigmoid(z / T) or Platt sigmoid(a z + b) (cxr-pneumonia 2.0 is Platt-calibrated)."""
    c = manifest["calibration"]
    z = z.astype(np.float64)
    if c["method"] == "temperature":
        return sigmoid(z / c["temperature"][0])
    assert c["method"] == "platt", c["method"]
    return sigmoid(c["a"][0] * z + c["b"][0])


def check_label(l, y, z, manifest, op, bins=15):
    """One label of the evaluation against sklearn/numpy on raw outputs z (float32)."""
    raw = sigmoid(z.astype(np.float64))
    cal = calibrated(manifest, z)
    assert l["positives"] == int(y.sum()) and l["negatives"] == int(len(y) - y.sum())
    assert l["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, cal), abs=1e-12)
    assert l["auroc"]["lo"] <= l["auroc"]["estimate"] <= l["auroc"]["hi"]
    assert l["average_precision"] == pytest.approx(average_precision_score(y, cal), abs=1e-12)
    for name, p in (("raw", raw), ("calibrated", cal)):
        m = l[name]
        assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
        assert m["log_loss"] == pytest.approx(log_loss(y, p, labels=[0, 1]), abs=1e-9)
        assert m["ece"] == pytest.approx(ece_width(y, p, bins), abs=1e-12)
        assert m["adaptive_ece"] == pytest.approx(ece_mass(y, p, bins), abs=1e-12)
    check_rates(l["operating_point"], y, cal, op["threshold"])
    lo, hi = op["refer_band"]
    inside = (cal >= lo) & (cal <= hi)
    wrong = (cal >= op["threshold"]).astype(int) != y
    r = l["refer"]
    assert r["referred"] == inside.sum()
    assert r["errors"] == wrong.sum()
    assert r["errors_referred"] == (inside & wrong).sum()
    return cal


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(7)
    n = 300
    y = (rng.random(n) < 0.4).astype(np.int32)
    signal = np.where(y == 1, 1.2, -1.2)
    za = np.round(signal + rng.normal(0, 1.0, n), 1).astype(np.float32)  # rounded: ties
    zb = np.round(0.6 * signal + rng.normal(0, 1.0, n), 1).astype(np.float32)
    return y, za, zb


def test_evaluate_synthetic_equals_sklearn(mv, synthetic):
    y, za, zb = synthetic
    a, b = mv.Model(str(PACKAGE)), mv.Model(str(PACKAGE))
    ev = mv.evaluate([a, b], [za[:, None], zb[:, None]], y, threshold=0.3, bootstrap=200)
    manifest = a.manifest
    op = manifest["thresholds"][LABEL]
    assert ev["images"] == len(y) and ev["labels"] == [LABEL]
    assert "Not for diagnostic use" in ev["note"]
    cals = []
    for m, z in zip(ev["models"], (za, zb)):
        assert m["name"] == "cxr-pneumonia" and m["version"] == manifest["version"]
        assert m["calibrated"] and m["calibration_method"] == manifest["calibration"]["method"]
        l = m["labels"][LABEL]
        cal = check_label(l, y, z, manifest, op)
        cals.append(cal)
        check_rates(l["at_threshold"], y, cal, 0.3)
        # Curves: sklearn's, unthinned at this size.
        fpr, tpr, _ = roc_curve(y, cal, drop_intermediate=False)
        np.testing.assert_allclose(l["roc_curve"]["fpr"], fpr, atol=1e-12)
        np.testing.assert_allclose(l["roc_curve"]["tpr"], tpr, atol=1e-12)
        prec, rec, _ = precision_recall_curve(y, cal)
        np.testing.assert_allclose(l["pr_curve"]["precision"], prec, atol=1e-12)
        np.testing.assert_allclose(l["pr_curve"]["recall"], rec, atol=1e-12)
    # DeLong against the numpy kernel form.
    aucs, se, z, p, _ = delong_numpy(y, cals[0], cals[1])
    d = ev["comparisons"][0]["labels"][LABEL]["delong"]
    assert d["auc_a"] == pytest.approx(aucs[0], abs=1e-12)
    assert d["auc_b"] == pytest.approx(aucs[1], abs=1e-12)
    assert d["se"] == pytest.approx(se, rel=1e-9)
    assert d["z"] == pytest.approx(z, rel=1e-9)
    assert d["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-15)
    assert d["p_value"] < 0.05  # model b is much weaker by construction
    # Paired bootstrap: the full-sample differences, CIs around them, seeded.
    boot = ev["comparisons"][0]["labels"][LABEL]["bootstrap"]
    assert boot["brier"]["difference"] == pytest.approx(
        brier_score_loss(y, cals[0]) - brier_score_loss(y, cals[1]), abs=1e-12)
    assert boot["auroc"]["difference"] == pytest.approx(aucs[0] - aucs[1], abs=1e-12)
    for k in ("auroc", "brier", "log_loss", "ece", "sensitivity", "specificity"):
        assert boot[k]["lo"] <= boot[k]["hi"] and boot[k]["resamples"] > 150, k
    again = mv.evaluate([a, b], [za[:, None], zb[:, None]], y, threshold=0.3, bootstrap=200)
    assert again == ev


def test_evaluate_sensitivity_target(mv, synthetic):
    y, za, _ = synthetic
    model = mv.Model(str(PACKAGE))
    ev = mv.evaluate(model, za[:, None], y, sensitivity=0.95, bootstrap=50)
    l = ev["models"][0]["labels"][LABEL]
    cal = calibrated(model.manifest, za)
    s = l["at_sensitivity"]
    t = s["threshold"]
    check_rates(s, y, cal, t)
    assert s["sensitivity"] >= 0.95
    higher = np.unique(cal[(y == 1) & (cal > t)])
    if len(higher):  # the next higher cut no longer reaches the target
        assert (cal[y == 1] >= higher[0]).mean() < 0.95
    assert ev["comparisons"] == []


def test_evaluate_bad_input(mv, synthetic):
    y, za, _ = synthetic
    model = mv.Model(str(PACKAGE))
    with pytest.raises(mv.InvalidArgumentError):
        mv.evaluate(model, za[:, None], y[:-1])
    with pytest.raises(mv.InvalidArgumentError):
        mv.evaluate(model, za[:, None], y * 2)
    with pytest.raises(mv.InvalidArgumentError):
        mv.evaluate(model, za[:, None], y, sensitivity=1.5)
    with pytest.raises(mv.InvalidArgumentError):
        mv.evaluate([model, model], [za[:, None], za[:10, None]], y)


def test_cli_evaluate_real_images(mv, tmp_path):
    cli = tool(CLI)
    files = kermany(20, "NORMAL") + kermany(20, "PNEUMONIA")
    y = np.array([0] * 20 + [1] * 20, np.int32)
    labels = tmp_path / "test.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for path, t in zip(files, y):
            w.writerow([path, "Pneumonia" if t else "normal"])
    # A second model: the same network without calibration or operating point.
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(PACKAGE / "model.pt", plain / "model.pt")
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    manifest["version"] = "uncalibrated"
    manifest.pop("calibration", None)
    manifest.pop("thresholds", None)
    (plain / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    proc = subprocess.run([str(cli), "evaluate", "--model", str(PACKAGE), "--model", str(plain),
                           "--labels", str(labels), "--out", str(out), "--threshold", "0.5",
                           "--device", "cpu", "--bootstrap", "200"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Not for diagnostic use" in proc.stdout and "DeLong" in proc.stdout
    ev = json.loads((out / "evaluation.json").read_text())

    # The JSON's numbers equal the library's on the same raw outputs.
    a, b = mv.Model(str(PACKAGE), device="cpu"), mv.Model(str(plain), device="cpu")
    za = a.logits(files, batch_size=16)
    zb = b.logits(files, batch_size=16)
    lib = mv.evaluate([a, b], [za, zb], y, threshold=0.5, bootstrap=200)
    ev_models = json.loads(json.dumps(ev["models"]))

    def close(x, y_):
        if isinstance(x, dict):
            assert x.keys() == y_.keys()
            for k in x:
                close(x[k], y_[k])
        elif isinstance(x, list):
            assert len(x) == len(y_)
            for u, v in zip(x, y_):
                close(u, v)
        elif isinstance(x, float):
            assert x == pytest.approx(y_, abs=1e-6)
        else:
            assert x == y_

    close(ev_models, lib["models"])
    close(ev["comparisons"], lib["comparisons"])

    # ... and scikit-learn's.
    manifest_t = json.loads((PACKAGE / "manifest.json").read_text())
    op = manifest_t["thresholds"][LABEL]
    check_label(ev["models"][0]["labels"][LABEL], y, za[:, 0], manifest_t, op)
    lp = ev["models"][1]["labels"][LABEL]
    assert ev["models"][1]["calibrated"] is False and lp["calibrated"] is None
    assert lp["operating_point"] is None and lp["refer"] is None
    raw = sigmoid(zb[:, 0].astype(np.float64))
    assert lp["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, raw), abs=1e-12)
    check_rates(lp["at_threshold"], y, raw, 0.5)
    aucs, se, z, p, _ = delong_numpy(y, calibrated(manifest_t, za[:, 0]), raw)
    d = ev["comparisons"][0]["labels"][LABEL]["delong"]
    assert d["difference"] == pytest.approx(aucs[0] - aucs[1], abs=1e-12)
    assert d["p_value"] == pytest.approx(p)

    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and " src=" not in html and "<link" not in html
    assert html.count("<svg") >= 4  # ROC, PR, one reliability diagram per model
    assert "Not for diagnostic use" in html
    assert "cxr-pneumonia " + manifest_t["version"] in html and "uncalibrated" in html
    assert "Paired comparison" in html and "DeLong" in html


def test_cli_evaluate_errors(tmp_path):
    cli = tool(CLI)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nx.png,Fracture\n")
    proc = subprocess.run([str(cli), "evaluate", "--model", str(PACKAGE), "--labels", str(bad),
                           "--out", str(tmp_path / "o"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 11, proc.stderr  # 10 + MV_ERR_INVALID_ARGUMENT
    assert str(bad) in proc.stderr and "Fracture" in proc.stderr
    proc = subprocess.run([str(cli), "evaluate", "--model", str(PACKAGE), "--labels", str(bad),
                           "--sensitivity", "0.9", "--threshold", "0.5"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # usage: the two are exclusive
    proc = subprocess.run([str(cli), "evaluate", "--model", str(PACKAGE), "--labels", str(bad),
                           "--sensitivity", "1.5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 11 and "--sensitivity" in proc.stderr


def test_evaluate_conformal_coverage(mv, synthetic, tmp_path):
    """A package recalibrated with conformal sets (medvision.calibrate on one half of the synthetic
    scores); evaluate's coverage on the other half equals the sets recomputed from its qhat."""
    y, za, _ = synthetic
    base = mv.Model(str(PACKAGE))
    fit, test = slice(0, 150), slice(150, None)
    mv.calibrate(base, za[fit, None], y[fit], tmp_path / "conf", conformal_alpha=0.1,
                 version="conformal-test")
    model = mv.Model(str(tmp_path / "conf"))
    conformal = model.manifest["calibration"]["conformal"]
    ev = mv.evaluate(model, za[test, None], y[test], bootstrap=50)
    c = ev["models"][0]["conformal"]
    assert c["alpha"] == conformal["alpha"] == 0.1
    q = conformal["qhat"][0]
    p = sigmoid(za[test].astype(np.float64) / model.manifest["calibration"]["temperature"][0])
    has_pos, has_neg = 1 - p <= q, p <= q
    covered = np.where(y[test] == 1, has_pos, has_neg)
    got = c["labels"][LABEL]
    assert got["coverage"] == pytest.approx(covered.mean(), abs=1e-12)
    assert got["both"] == (has_pos & has_neg).sum()
    assert got["empty"] == (~has_pos & ~has_neg).sum()
