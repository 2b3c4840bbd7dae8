"""Deterministic patient-level splits (numpy only)."""
from __future__ import annotations

import re

import numpy as np


def patient_split(groups, val_frac: float, seed: int, strata=None) -> np.ndarray:
    """Boolean is_val per item. All items of a group (patient) land on the same side. Groups are
    stratified by `strata` (per item; a group's stratum is its max), so every stratum contributes
    round(val_frac * n_groups_in_stratum) groups (at least 1 when it has >= 2 groups)."""
    groups = np.asarray([str(g) for g in groups])
    uniq = sorted(set(groups.tolist()))
    gstrat = {g: 0 for g in uniq}
    if strata is not None:
        for g, s in zip(groups.tolist(), np.asarray(strata).tolist()):
            gstrat[g] = max(gstrat[g], int(s))
    rng = np.random.RandomState(seed)
    val = set()
    for s in sorted(set(gstrat.values())):
        gs = [g for g in uniq if gstrat[g] == s]
        k = int(round(val_frac * len(gs)))
        if len(gs) >= 2:
            k = min(max(k, 1), len(gs) - 1)
        perm = rng.permutation(len(gs))
        val.update(gs[i] for i in perm[:k])
    return np.array([g in val for g in groups.tolist()])


def kermany_patient(path: str) -> str:
    """person1000_bacteria_2931.jpeg -> P:person1000; IM-0629-0001-0002.jpeg and
    NORMAL2-IM-0629-0001.jpeg -> N:0629 (the IM/NORMAL2-IM number is merged on purpose: it may
    join two different children, it can never split one child across train/val)."""
    name = path.rsplit("/", 1)[-1]
    m = re.match(r"(person\d+)_", name)
    if m:
        return "P:" + m.group(1)
    m = re.search(r"IM-(\d+)-", name)
    if m:
        return "N:" + m.group(1)
    return "U:" + name
