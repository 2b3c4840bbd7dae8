"""The prior shift (issue 18, `medvision calibrate --prior-shift`): Model.estimate_prior /
Model.adapt_prior against an independent numpy implementation of the EM of Saerens, Latinne &
Decaestecker (2002), on synthetic calibrated scores with known class-conditional distributions.

No inference runs here: the packages are the bundled cxr-pneumonia model (sigmoid, one label) and
a three-class softmax package whose manifest is rewritten, and the raw outputs are drawn so that a
temperature of 1 makes them the exact posterior at the source prior. The estimates must equal
numpy's to 1e-9 and recover the true prevalence within 4 standard errors, the standard error being
the observed information of the log-likelihood at the estimate (so the tolerance follows from N
and from how well the classes separate)."""
import json
import math
import shutil

import numpy as np
import pytest

from conftest import ROOT

PNEUMONIA = ROOT / "models" / "cxr-pneumonia" / "package"
SOURCE = 0.75
N = 2000


def package(tmp_path, name, edit):
    dst = tmp_path / name
    shutil.copytree(PNEUMONIA, dst)
    m = json.loads((dst / "manifest.json").read_text())
    edit(m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def sigmoid_package(m):
    m["calibration"] = {"method": "temperature", "activation": "sigmoid", "labels": 1,
                        "temperature": [1.0],
                        "fitted_on": {"n": 400, "positives": [int(400 * SOURCE)]}}


# ---- numpy reference ----------------------------------------------------------------------

def np_em_binary(p, ps, tol=1e-8, max_iter=1000):
    pi = ps
    for it in range(1, max_iter + 1):
        a = pi / ps * p
        b = (1 - pi) / (1 - ps) * (1 - p)
        nxt = float(np.mean(a / (a + b)))
        nxt = min(1 - 1e-6, max(1e-6, nxt))
        done = abs(nxt - pi) < tol
        pi = nxt
        if done:
            break
    ll = float(np.sum(np.log(pi / ps * p + (1 - pi) / (1 - ps) * (1 - p))))
    return pi, it, ll


def np_em_softmax(p, ps, tol=1e-8, max_iter=1000):
    pi = np.array(ps, float)
    for it in range(1, max_iter + 1):
        w = p * (pi / ps)
        post = w / w.sum(axis=1, keepdims=True)
        nxt = np.maximum(post.mean(axis=0), 1e-6)
        nxt /= nxt.sum()
        done = np.max(np.abs(nxt - pi)) < tol
        pi = nxt
        if done:
            break
    ll = float(np.sum(np.log((p * (pi / ps)).sum(axis=1))))
    return pi, it, ll


def chi2_sf(x, dof):
    # scipy is not a dependency: closed forms for 1 and 2 degrees of freedom.
    if dof == 1:
        return math.erfc(math.sqrt(x / 2))
    assert dof == 2
    return math.exp(-x / 2)


# ---- synthetic data -------------------------------------------------------------------------

def binary_logits(rng, target, n=N, mu=1.0):
    """Scores x | y=1 ~ N(mu, 1), x | y=0 ~ N(-mu, 1), n * target positives exactly; the logit
    2 mu x + log(ps / (1 - ps)) is the posterior's at the source prior."""
    pos = int(round(n * target))
    x = np.concatenate([rng.normal(mu, 1, pos), rng.normal(-mu, 1, n - pos)])
    return (2 * mu * x + math.log(SOURCE / (1 - SOURCE))).astype(np.float32)[:, None]


def se_binary(p, ps, pi):
    # Observed information of l(pi) = sum log(pi/ps p + (1-pi)/(1-ps) (1-p)).
    d = (p / ps - (1 - p) / (1 - ps)) / (pi / ps * p + (1 - pi) / (1 - ps) * (1 - p))
    return 1 / math.sqrt(float(np.sum(d * d)))


@pytest.mark.parametrize("target", [0.3, 0.6, 0.9])
def test_binary_em_equals_numpy_and_recovers_prior(mv, tmp_path, target):
    model = mv.Model(str(package(tmp_path, "pkg", sigmoid_package)))
    z = binary_logits(np.random.default_rng(int(target * 100)), target)
    r = model.estimate_prior(z)
    p = 1 / (1 + np.exp(-z[:, 0].astype(np.float64)))
    pi, it, ll = np_em_binary(p, SOURCE)
    ps = r["prior_shift"]
    assert ps["method"] == "em_saerens2002"
    assert ps["source_prior"] == pytest.approx([SOURCE], abs=1e-15)
    assert abs(ps["target_prior"][0] - pi) < 1e-9
    assert ps["iterations"] == it and ps["converged"]
    assert ps["images"] == N
    assert ps["log_likelihood"]["before"] == 0
    assert ps["log_likelihood"]["after"] == pytest.approx(ll, rel=1e-9, abs=1e-9)
    assert ps["lr_test"]["statistic"] == pytest.approx(2 * ll, rel=1e-9, abs=1e-9)
    assert ps["lr_test"]["dof"] == 1
    assert ps["lr_test"]["p_value"] == pytest.approx(chi2_sf(2 * ll, 1), rel=1e-6, abs=1e-300)
    # The truth within 4 standard errors (observed information at the estimate).
    assert abs(pi - target) < 4 * se_binary(p, SOURCE, pi)
    # Far from the source prior the test says so; 0.6 vs 0.75 on 2000 images too.
    assert ps["lr_test"]["p_value"] < 1e-3
    # The mean adjusted probability is the estimate (the EM fixed point).
    assert r["mean_probability"]["after"][0] == pytest.approx(pi, abs=1e-7)
    assert r["drift"] is None and "Not for diagnostic use" in r["notice"]  # no drift reference here


def test_unchanged_prior_is_not_significant(mv, tmp_path):
    model = mv.Model(str(package(tmp_path, "pkg", sigmoid_package)))
    z = binary_logits(np.random.default_rng(7), SOURCE)
    ps = model.estimate_prior(z)["prior_shift"]
    assert abs(ps["target_prior"][0] - SOURCE) < 0.05
    assert ps["lr_test"]["p_value"] > 0.001


CLASSES = ["a", "b", "c"]
SOURCE3 = np.array([0.5, 0.3, 0.2])
MU3 = 1.5 * np.eye(3)


def softmax_package(tmp_path):
    """A three-class softmax package: a tiny TorchScript model (its outputs are never used here;
    the raw outputs are given) and a temperature-1 calibration at SOURCE3."""
    torch = pytest.importorskip("torch")
    import hashlib

    class Three(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=[2, 3])
            return torch.cat([m, 2 * m, 3 * m], dim=1)

    dst = tmp_path / "soft"
    dst.mkdir()
    torch.jit.script(Three()).save(str(dst / "model.pt"))
    m = {"format_version": 1, "name": "tiny-three", "version": "0.1.0",
         "task": "classification", "labels": CLASSES, "input": {"channels": 1, "size": [8, 8]},
         "preprocess": [{"op": "scale", "mode": "fixed", "min": 0.0, "max": 255.0},
                        {"op": "resize", "mode": "stretch", "size": [8, 8]},
                        {"op": "channels", "channels": 1}],
         "output": {"activation": "softmax"}, "notice": "Test model. Not for diagnostic use.",
         "sha256": hashlib.sha256((dst / "model.pt").read_bytes()).hexdigest(),
         "calibration": {"method": "temperature", "activation": "softmax", "labels": 3,
                         "temperature": [1.0],
                         "fitted_on": {"n": 1000,
                                       "positives": [int(x) for x in 1000 * SOURCE3]}}}
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def softmax_logits(rng, target, n=N):
    counts = np.round(np.asarray(target) * n).astype(int)
    x = np.concatenate([rng.normal(MU3[k], 1, (counts[k], 3)) for k in range(3)])
    # log p(x | k) + log ps_k up to a shared term: mu_k . x - |mu_k|^2 / 2 + log ps_k.
    z = x @ MU3.T - 0.5 * (MU3 ** 2).sum(axis=1) + np.log(SOURCE3)
    return z.astype(np.float32)


@pytest.mark.parametrize("target", [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
def test_softmax_em_equals_numpy(mv, tmp_path, target):
    model = mv.Model(str(softmax_package(tmp_path)))
    z = softmax_logits(np.random.default_rng(3), target)
    r = model.estimate_prior(z)
    zz = z.astype(np.float64)
    p = np.exp(zz - zz.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    pi, it, ll = np_em_softmax(p, SOURCE3)
    ps = r["prior_shift"]
    assert np.max(np.abs(np.array(ps["target_prior"]) - pi)) < 1e-9
    assert ps["iterations"] == it and ps["converged"]
    assert ps["lr_test"]["dof"] == 2
    assert ps["lr_test"]["statistic"] == pytest.approx(2 * ll, rel=1e-9)
    assert ps["lr_test"]["p_value"] == pytest.approx(chi2_sf(2 * ll, 2), rel=1e-6, abs=1e-300)
    # Recovery: within 4 standard errors from the observed information of
    # l(pi) = sum_i log sum_k pi_k q_ik (q_ik = p_ik / ps_k), free parameters pi_1, pi_2.
    q = p / SOURCE3
    s = q @ pi
    g = (q[:, :2] - q[:, 2:3]) / s[:, None]
    cov = np.linalg.inv(g.T @ g)
    se = [math.sqrt(cov[0, 0]), math.sqrt(cov[1, 1]), math.sqrt(float(np.ones(2) @ cov @ np.ones(2)))]
    for k in range(3):
        assert abs(pi[k] - target[k]) < 4 * se[k]


def test_adapt_writes_package_and_thresholds(mv, tmp_path):
    model = mv.Model(str(package(tmp_path, "pkg", sigmoid_package)))
    z = binary_logits(np.random.default_rng(11), 0.3)
    out = tmp_path / "adapted"
    r = model.adapt_prior(z, out, description="synthetic", version="9.9.9")
    m = json.loads((out / "manifest.json").read_text())
    assert m["version"] == "9.9.9" and r["version"] == "9.9.9"
    ps = m["calibration"]["prior_shift"]
    pt = ps["target_prior"][0]
    assert ps["data"] == "synthetic" and ps["date"]
    assert json.loads((out / "prior-shift-report.json").read_text())["prior_shift"] == ps
    old = json.loads((PNEUMONIA / "manifest.json").read_text())["thresholds"]["Pneumonia"]
    t = m["thresholds"]["Pneumonia"]
    r_odds = (pt / SOURCE) / ((1 - pt) / (1 - SOURCE))

    def f(p):
        return r_odds * p / (r_odds * p + 1 - p)

    assert t["threshold"] == pytest.approx(f(old["threshold"]), rel=1e-12)
    assert t["refer_band"] == pytest.approx([f(v) for v in old["refer_band"]], rel=1e-12)
    rec = t["prior_shift"]
    assert rec["source_threshold"] == old["threshold"]
    se, sp = old["sensitivity"], old["specificity"]
    assert rec["ppv"] == pytest.approx(se * pt / (se * pt + (1 - sp) * (1 - pt)), rel=1e-12)
    assert rec["npv"] == pytest.approx(sp * (1 - pt) / (sp * (1 - pt) + (1 - se) * pt), rel=1e-12)
    # Adapting the adapted package starts again from the calibration set's prior and threshold.
    again = mv.Model(str(out)).adapt_prior(z, tmp_path / "again")
    assert again["prior_shift"]["target_prior"] == pytest.approx([pt], abs=1e-12)
    assert again["thresholds"]["Pneumonia"]["prior_shift"]["source_threshold"] == old["threshold"]
    with pytest.raises(mv.InvalidArgumentError, match="already holds a manifest"):
        model.adapt_prior(z, out)


def test_errors(mv, tmp_path):
    def uncalibrated(m):
        m.pop("calibration")

    def old_calibration(m):
        sigmoid_package(m)
        m["calibration"].pop("fitted_on")

    z = binary_logits(np.random.default_rng(5), 0.5, n=200)
    with pytest.raises(mv.InvalidArgumentError, match="not calibrated"):
        mv.Model(str(package(tmp_path, "u", uncalibrated))).estimate_prior(z)
    old = mv.Model(str(package(tmp_path, "o", old_calibration)))
    with pytest.raises(mv.InvalidArgumentError, match="no source prior.*--source-prior"):
        old.estimate_prior(z)
    r = old.estimate_prior(z, source_prior=[SOURCE])
    assert r["prior_shift"]["source_prior_from"] == "given"
    with pytest.raises(mv.InvalidArgumentError, match=r"not inside \(0, 1\)"):
        old.estimate_prior(z, source_prior=[1.0])
    with pytest.raises(mv.InvalidArgumentError, match="1 labels"):
        old.estimate_prior(z, source_prior=[0.5, 0.5])
    model = mv.Model(str(package(tmp_path, "pkg", sigmoid_package)))
    with pytest.raises(mv.InvalidArgumentError, match="count > 0"):
        model.estimate_prior(np.zeros((0, 1), np.float32))
    bad = z.copy()
    bad[17, 0] = np.nan
    with pytest.raises(mv.InvalidArgumentError, match="image 17.*not finite"):
        model.estimate_prior(bad)
    # Every image far on the negative side: the prevalence runs to 0, clamped, with a warning.
    ps = model.estimate_prior(np.full((50, 1), -40, np.float32))["prior_shift"]
    assert ps["target_prior"][0] == pytest.approx(1e-6)
    assert any("clamped" in w for w in ps["warnings"])


def test_label_shift_fit_tells_prevalence_from_covariate_shift(mv):
    """The bundled package's drift reference (101 logit quantiles of its calibration images):
    a sample of the reference itself, thinned to a lower prevalence by dropping positives, fits
    the reweighted reference; the same sample moved by +4 logits (images that look different)
    does not, although the pooled drift check flags both."""
    model = mv.Model(str(PNEUMONIA))
    m = json.loads((PNEUMONIA / "manifest.json").read_text())
    q = np.asarray(m["calibration"]["drift"]["quantiles"][0], float)
    rng = np.random.default_rng(4)
    z = np.interp(rng.uniform(0, 100, 4000), np.arange(101), q)
    cal = m["calibration"]  # the package's calibration map, temperature or Platt
    s = z / cal["temperature"][0] if cal["method"] == "temperature" else cal["a"][0] * z + cal["b"][0]
    p = 1 / (1 + np.exp(-s))
    # Keep each image with probability 1 - p * 0.85: positives mostly dropped (a prior shift
    # with p(x | y) unchanged, since the calibrated p is the posterior of y given x).
    keep = rng.uniform(size=z.size) > 0.85 * p
    thinned = z[keep][:600].astype(np.float32)[:, None]
    r = model.estimate_prior(thinned)
    assert r["prior_shift"]["target_prior"][0] < 0.5
    assert r["drift"]["shifted"]
    fit = r["label_shift_fit"]["labels"][0]
    assert fit["label"] == "Pneumonia" and fit["consistent"], fit
    assert fit["ks"] < r["drift"]["labels"][0]["ks"]
    moved = model.estimate_prior(thinned + 4)
    assert not moved["label_shift_fit"]["labels"][0]["consistent"]
