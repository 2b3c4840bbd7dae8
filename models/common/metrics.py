"""Metrics. The in-training part is pure numpy (runs on the GPU box); the sklearn/scipy versions
(`*_sklearn`, `hd95`) are imported lazily and used by tools/evaluate.py on the workstation."""
from __future__ import annotations

import math

import numpy as np


def sigmoid(z):
    z = np.asarray(z, np.float64)
    return 1.0 / (1.0 + np.exp(-z))


def auroc(y, s) -> float:
    """Mann-Whitney AUROC with average ranks for ties; nan if only one class present."""
    y = np.asarray(y).astype(bool).ravel()
    s = np.asarray(s, np.float64).ravel()
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    ranks = np.empty(len(s), np.float64)
    _, first, counts = np.unique(ss, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def bootstrap_ci(y, s, fn=auroc, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """Percentile bootstrap (resampling cases) -> (lo, hi); resamples with one class are skipped."""
    y = np.asarray(y)
    s = np.asarray(s)
    rng = np.random.RandomState(seed)
    vals = []
    n = len(y)
    for _ in range(n_boot):
        idx = rng.randint(0, n, n)
        v = fn(y[idx], s[idx])
        if not math.isnan(v):
            vals.append(v)
    if len(vals) < 10:
        return (float("nan"), float("nan"))
    return (float(np.percentile(vals, 100 * alpha / 2)), float(np.percentile(vals, 100 * (1 - alpha / 2))))


def ece_binary(y, p, n_bins: int = 15) -> float:
    """Expected calibration error of P(positive) with equal-width bins on [0, 1]."""
    y = np.asarray(y, np.float64).ravel()
    p = np.asarray(p, np.float64).ravel()
    if len(y) == 0:
        return float("nan")
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1)
    e = 0.0
    for b in range(n_bins):
        m = idx == b
        if m.any():
            e += m.mean() * abs(y[m].mean() - p[m].mean())
    return float(e)


def binary_report(y, logit, threshold: float = 0.5, n_boot: int = 1000, seed: int = 0) -> dict:
    y = np.asarray(y).astype(int).ravel()
    p = sigmoid(logit).ravel()
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    a = auroc(y, p)
    lo, hi = bootstrap_ci(y, p, auroc, n_boot, seed) if n_boot else (float("nan"), float("nan"))
    prev = float(y.mean()) if len(y) else float("nan")
    return {
        "n": int(len(y)), "positives": int(y.sum()), "prevalence": prev,
        "auroc": a, "auroc_ci95": [lo, hi],
        "accuracy": (tp + tn) / max(len(y), 1),
        "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1),
        "ppv": tp / max(tp + fp, 1) if (tp + fp) else float("nan"),
        "threshold": threshold, "ece15": ece_binary(y, p, 15),
        "brier": float(np.mean((p - y) ** 2)) if len(y) else float("nan"),
        "trivial_baseline": {"auroc": 0.5, "accuracy_all_negative": 1 - prev if len(y) else float("nan"),
                             "brier_prevalence": prev * (1 - prev) if len(y) else float("nan")},
    }


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    pred = np.asarray(pred).astype(bool)
    gt = np.asarray(gt).astype(bool)
    s = pred.sum() + gt.sum()
    return float(2.0 * (pred & gt).sum() / s) if s else 1.0


# ---------------------------------------------------------------- workstation-only (lazy imports)

def auroc_sklearn(y, s) -> float:
    from sklearn.metrics import roc_auc_score
    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def auroc_ci_sklearn(y, s, n_boot: int = 2000, seed: int = 0):
    """(auroc, lo, hi) with sklearn's roc_auc_score and a percentile bootstrap over cases."""
    return auroc_sklearn(y, s), *bootstrap_ci(y, s, auroc_sklearn, n_boot, seed)


def hd95(pred: np.ndarray, gt: np.ndarray, spacing=None) -> float:
    """95th-percentile symmetric Hausdorff distance between mask surfaces (scipy). nan if either
    mask is empty."""
    from scipy import ndimage
    pred = np.asarray(pred).astype(bool)
    gt = np.asarray(gt).astype(bool)
    if not pred.any() or not gt.any():
        return float("nan")
    spacing = spacing or (1.0,) * pred.ndim
    st = ndimage.generate_binary_structure(pred.ndim, 1)
    sp = pred ^ ndimage.binary_erosion(pred, st, border_value=0)
    sg = gt ^ ndimage.binary_erosion(gt, st, border_value=0)
    dg = ndimage.distance_transform_edt(~sg, sampling=spacing)
    dp = ndimage.distance_transform_edt(~sp, sampling=spacing)
    d = np.concatenate([dg[sp], dp[sg]])
    return float(np.percentile(d, 95))
