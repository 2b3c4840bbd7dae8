"""`medvision calibrate --prior-shift FOLDER` end to end on real chest X-rays (issue 18):
the bundled cxr-pneumonia package adapted to two folders of Kermany images subsampled to a low
(0.2) and a high (0.8) pneumonia prevalence, 60 images each, plus one unreadable file:
  * the unreadable file is reported by name and skipped;
  * the estimated prevalence is printed and recorded, and it is lower for the low folder than for
    the high one (each on the correct side of the calibration set's 0.757);
  * the new package loads, and its calibrated probabilities are the closed form
    r p / (r p + 1 - p), r = (pt / ps) / ((1 - pt) / (1 - ps)), of the old package's;
    every image keeps its decision and refer flag;
  * without --out the estimate is printed and nothing is written.
Needs $MEDVISION_DATA/kermany (skips without it, fails where CI=true). About 30 s on 2 cores.
"""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402

CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
PACKAGE = ROOT / "models" / "cxr-pneumonia" / "package"
N = 60


def run(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def folder(tmp, name, prevalence, normal, pneumonia, rng):
    d = tmp / name
    d.mkdir()
    pos = int(round(prevalence * N))
    for src in rng.sample(pneumonia, pos) + rng.sample(normal, N - pos):
        (d / src.name).symlink_to(src)
    return d


def classify(model, files):
    r = run("classify", "--json", "--model", model, *files)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        j = json.loads(line)
        out[j["file"]] = j["labels"][0]
    return out


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    data = data_or_skip("kermany")
    if not Path(CLI).exists():
        pytest.fail(f"{CLI} not built")
    rng = random.Random(18)
    normal = sorted((data / "NORMAL").glob("*.jpeg"))
    pneumonia = sorted((data / "PNEUMONIA").glob("*.jpeg"))
    tmp = tmp_path_factory.mktemp("prior")
    out = {}
    for name, prev in (("low", 0.2), ("high", 0.8)):
        d = folder(tmp, name, prev, normal, pneumonia, rng)
        if name == "low":
            (d / "broken.png").write_bytes(b"not a png")
        r = run("calibrate", "--model", PACKAGE, "--prior-shift", d, "--out", tmp / f"pkg-{name}",
                "--package-version", f"1.2.3+{name}")
        out[name] = (d, tmp / f"pkg-{name}", r)
    return out


def test_unreadable_file_is_named_and_skipped(adapted):
    d, pkg, r = adapted["low"]
    assert r.returncode == 0, r.stderr
    assert "broken.png" in r.stderr and "skipped" in r.stderr
    m = json.loads((pkg / "manifest.json").read_text())
    assert m["calibration"]["prior_shift"]["images"] == N


def test_estimate_moves_with_prevalence(adapted):
    est = {}
    for name in ("low", "high"):
        _, pkg, r = adapted[name]
        assert r.returncode == 0, r.stderr
        m = json.loads((pkg / "manifest.json").read_text())
        ps = m["calibration"]["prior_shift"]
        assert ps["method"] == "em_saerens2002" and ps["converged"]
        assert ps["source_prior"][0] == pytest.approx(290 / 383)
        est[name] = ps["target_prior"][0]
        assert f"{est[name]:.4f} (estimated)" in r.stdout
        assert m["version"] == f"1.2.3+{name}"
        assert "drift check of the same images" in r.stdout
        report = json.loads((pkg / "prior-shift-report.json").read_text())
        assert report["prior_shift"] == ps and report["drift"]["labels"][0]["label"] == "Pneumonia"
        fit = report["label_shift_fit"]["labels"][0]
        assert fit["label"] == "Pneumonia" and 0 <= fit["ks"] <= 1
        assert "reweighted to the estimate" in r.stdout
        print(f"{name}: estimated prevalence {est[name]:.3f}, LR p {ps['lr_test']['p_value']:.3g}")
    assert est["low"] < 290 / 383 < est["high"]
    assert est["low"] < 0.45 and est["high"] > 0.6


def test_new_package_probabilities_are_the_closed_form(adapted):
    d, pkg, _ = adapted["high"]
    files = sorted(str(p) for p in d.glob("*.jpeg"))
    old, new = classify(PACKAGE, files), classify(pkg, files)
    m = json.loads((pkg / "manifest.json").read_text())
    ps, pt = m["calibration"]["prior_shift"]["source_prior"][0], \
        m["calibration"]["prior_shift"]["target_prior"][0]
    r = (pt / ps) / ((1 - pt) / (1 - ps))
    for f in files:
        p = old[f]["calibrated"]
        assert new[f]["calibrated"] == pytest.approx(r * p / (r * p + 1 - p), rel=1e-5, abs=1e-7)
        assert new[f]["decision"] == old[f]["decision"]
        assert new[f]["refer"] == old[f]["refer"]
        assert new[f]["logit"] == old[f]["logit"]


def test_estimate_only_writes_nothing(adapted, tmp_path):
    d, _, _ = adapted["high"]
    r = run("calibrate", "--model", PACKAGE, "--prior-shift", d)
    assert r.returncode == 0, r.stderr
    assert "(estimated)" in r.stdout and "prior-shift-report.json" not in r.stdout
    r = run("calibrate", "--model", PACKAGE, "--prior-shift", tmp_path)
    assert r.returncode != 0 and "no images" in r.stderr
