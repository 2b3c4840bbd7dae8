"""`medvision calibrate --conformal ALPHA --conformal-score aps` end to end through the CLI, on a
synthetic softmax package made here (a tiny TorchScript model that scores three intensity classes
of grey PNGs) and labels drawn from an overconfident version of its own probabilities:
  * the calibrated package's manifest records the score "aps" and the alpha;
  * `medvision classify --json` on it gives every result a softmax conformal set
    ({"alpha", "set"}) that is the APS set of the calibrated probabilities it reports: the classes
    in decreasing probability while their running mass stays <= qhat;
  * APS is refused with a clear message on a sigmoid model (the committed cxr-pneumonia), as is an
    unknown score and --conformal-score aps without --conformal.
"""
import csv
import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
CLASSES = ["dark", "mid", "bright"]
CENTRES = [0.2, 0.5, 0.8]
ALPHA = 0.2


class Intensity(torch.nn.Module):
    """Logits -20 (m - c_k)^2 of the mean intensity m in [0, 1] for centres c_k."""

    def __init__(self):
        super().__init__()
        self.centres = torch.nn.Parameter(torch.tensor(CENTRES), requires_grad=False)

    def features(self, x):
        return x

    def head(self, f):
        m = f.mean(dim=[2, 3])  # [N, 1]
        return -20.0 * (m - self.centres.view(1, -1)) ** 2

    def forward(self, x):
        return self.head(self.features(x))


def make_package(folder: Path) -> Path:
    folder.mkdir()
    torch.jit.script(Intensity()).save(str(folder / "model.pt"))
    m = {"format_version": 1, "name": "tiny-intensity", "version": "0.1.0",
         "task": "classification", "labels": CLASSES, "input": {"channels": 1, "size": [8, 8]},
         "preprocess": [{"op": "scale", "mode": "fixed", "min": 0.0, "max": 255.0},
                        {"op": "resize", "mode": "stretch", "size": [8, 8]},
                        {"op": "channels", "channels": 1}],
         "output": {"activation": "softmax"}, "explain": {"features": "features", "head": "head"},
         "notice": "Test model. Not for diagnostic use.",
         "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def make_images(folder: Path, n: int, seed: int):
    """n grey 8x8 PNGs of uniform random intensity, each labelled with a class drawn from the
    softmax of the model's logits / 2.5 (so the raw model is overconfident)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        v = int(rng.integers(0, 256))
        Image.fromarray(np.full((8, 8), v, np.uint8)).save(folder / f"img{i:03d}.png")
        z = -20.0 * (v / 255.0 - np.array(CENTRES)) ** 2 / 2.5
        p = np.exp(z - z.max())
        rows.append((f"img{i:03d}.png", CLASSES[int(rng.choice(3, p=p / p.sum()))]))
    with open(folder / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return folder / "labels.csv", [str(folder / r[0]) for r in rows]


def run(cmd, ok=True):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if ok:
        assert proc.returncode == 0, f"{cmd[:2]} failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def test_calibrate_aps_on_a_softmax_package(tmp_path):
    package = make_package(tmp_path / "pkg")
    labels, _ = make_images(tmp_path / "cal", 240, seed=3)
    out = tmp_path / "aps"
    printed = run([CLI, "calibrate", "--model", package, "--labels", labels, "--conformal", ALPHA,
                   "--conformal-score", "aps", "--out", out, "--device", "cpu"]).stdout
    print(printed)
    assert "score aps" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    conformal = manifest["calibration"]["conformal"]
    assert conformal["score"] == "aps" and conformal["alpha"] == ALPHA
    assert conformal["n"] > 0 and len(conformal["qhat"]) == 1
    q = conformal["qhat"][0]
    q = float("inf") if q is None else q

    _, files = make_images(tmp_path / "test", 60, seed=4)
    stdout = run([CLI, "classify", "--json", "--device", "cpu", "--model", out] + files).stdout
    results = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert len(results) == len(files)
    sizes = []
    for r in results:
        assert r["conformal"]["alpha"] == ALPHA
        got = r["conformal"]["set"]
        assert set(got) <= set(CLASSES)
        ranked = sorted(r["labels"], key=lambda e: -e["calibrated"])
        mass, want, near = 0.0, [], False
        for e in ranked:
            mass += e["calibrated"]
            near |= abs(mass - q) < 1e-5  # float32 in JSON, double inside
            if mass <= q:
                want.append(e["label"])
        if not near:
            assert got == want, (r, q)
        sizes.append(len(got))
    print("set sizes:", {k: sizes.count(k) for k in sorted(set(sizes))}, "qhat", q)
    # APS adapts: with images near the class boundaries not every set has the same size.
    assert len(set(sizes)) > 1


def test_calibrate_aps_is_refused_where_it_does_not_apply(tmp_path):
    package = make_package(tmp_path / "pkg")
    labels, _ = make_images(tmp_path / "cal", 12, seed=5)
    bad = run([CLI, "calibrate", "--model", package, "--labels", labels, "--conformal", ALPHA,
               "--conformal-score", "raps", "--out", tmp_path / "x"], ok=False)
    assert bad.returncode != 0 and "--conformal-score: lac or aps" in bad.stderr
    bad = run([CLI, "calibrate", "--model", package, "--labels", labels, "--conformal-score",
               "aps", "--out", tmp_path / "x"], ok=False)
    assert bad.returncode != 0 and "needs --conformal" in bad.stderr
    sigmoid = ROOT / "models" / "cxr-pneumonia" / "package"
    bad = run([CLI, "calibrate", "--model", sigmoid, "--labels", labels, "--conformal", ALPHA,
               "--conformal-score", "aps", "--out", tmp_path / "x", "--device", "cpu"], ok=False)
    assert bad.returncode != 0, bad.stdout
    assert "softmax" in bad.stderr and "sigmoid" in bad.stderr, bad.stderr
    assert not (tmp_path / "x").exists()
