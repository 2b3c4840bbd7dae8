"""Issue 16 leftovers: the per-image out-of-distribution score and the refer band's rule, through
the C API (ctypes on libmedvision), Python, and the CLI's human and JSON output.

The OOD score is checked against an independent numpy computation from the manifest's drift
quantiles (docs/calibration.md): max over labels of |logit - q50| / ((q75 - q25) / 1.349)."""
import ctypes
import json
import math
import shutil
import subprocess

import numpy as np
import pytest

from conftest import BUILD, CLI, EXAMPLE_DCM, ROOT, tool

PNEUMONIA = ROOT / "models" / "cxr-pneumonia" / "package"
FINDINGS = ROOT / "models" / "cxr-findings" / "package"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool(CLI)), *args], capture_output=True, text=True, timeout=300)


def expected_ood(manifest, logits):
    q = np.asarray(manifest["calibration"]["drift"]["quantiles"], float)
    sigma = (q[:, 75] - q[:, 25]) / 1.349
    z = np.abs(np.asarray(logits, float) - q[:, 50]) / sigma
    return float(z.max()), int(z.argmax())


def copy_package(src, dst, edit):
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    edit(m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_python_ood_equals_numpy(mv):
    manifest = json.loads((FINDINGS / "manifest.json").read_text())
    with mv.Model(str(FINDINGS), device="cpu") as m:
        c = m.classify(EXAMPLE_DCM)
    logits = [s.logit for s in c.scores]
    score, label = expected_ood(manifest, logits)
    assert c.ood["score"] == pytest.approx(score, rel=1e-5)
    assert c.ood["label"] == manifest["labels"][label]
    assert 0 <= c.ood["percentile"] <= 100
    assert c.ood["far"] == (score > 3) and c.ood["far_above"] == 3
    assert "out-of-distribution score" in repr(c)
    assert c.to_dict()["ood"] == c.ood


def test_far_image_is_flagged_everywhere(mv, tmp_path):
    """A drift reference squeezed far from this image's logit: far, and a warning that says so."""
    def squeeze(m):
        m["calibration"]["drift"]["quantiles"] = [[-20.0 + 0.001 * k for k in range(101)]]

    pkg = copy_package(PNEUMONIA, tmp_path / "pkg", squeeze)
    with mv.Model(str(pkg), device="cpu") as m:
        c = m.classify(EXAMPLE_DCM)
    assert c.ood["far"] and c.ood["score"] > 3 and c.ood["percentile"] == 100
    assert any("out-of-distribution score" in w and "(Pneumonia)" in w for w in c.warnings)
    r = cli("classify", str(EXAMPLE_DCM), "--model", str(pkg), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "out-of-distribution score" in r.stdout and ": FAR" in r.stdout
    j = json.loads(cli("classify", str(EXAMPLE_DCM), "--model", str(pkg), "--device", "cpu",
                       "--json").stdout.splitlines()[0])
    assert j["ood"]["far"] is True and j["ood"]["label"] == "Pneumonia"


def test_no_drift_reference_no_score(mv, tmp_path):
    def drop(m):
        del m["calibration"]["drift"]

    pkg = copy_package(PNEUMONIA, tmp_path / "pkg", drop)
    with mv.Model(str(pkg), device="cpu") as m:
        c = m.classify(EXAMPLE_DCM)
    assert c.ood is None
    j = json.loads(cli("classify", str(EXAMPLE_DCM), "--model", str(pkg), "--device", "cpu",
                       "--json").stdout.splitlines()[0])
    assert j["ood"] is None


def test_capi_accessor(mv):
    lib = ctypes.CDLL(str(tool(BUILD / "src" / "libmedvision.so")))
    lib.mv_model_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mv_image_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mv_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mv_result_ood_score.argtypes = [ctypes.c_void_p]
    lib.mv_result_ood_score.restype = ctypes.c_double
    lib.mv_result_logit.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.mv_result_logit.restype = ctypes.c_float
    for f in ("mv_model_free", "mv_image_free", "mv_result_free"):
        getattr(lib, f).argtypes = [ctypes.c_void_p]
    model, image, result = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert lib.mv_model_load(str(PNEUMONIA).encode(), None, ctypes.byref(model)) == 0
    assert lib.mv_image_load(str(EXAMPLE_DCM).encode(), None, ctypes.byref(image)) == 0
    assert lib.mv_model_run(model, image, ctypes.byref(result)) == 0
    manifest = json.loads((PNEUMONIA / "manifest.json").read_text())
    score, _ = expected_ood(manifest, [lib.mv_result_logit(result, 0)])
    assert lib.mv_result_ood_score(result) == pytest.approx(score, rel=1e-5)
    assert math.isnan(lib.mv_result_ood_score(None))
    lib.mv_result_free(result)
    lib.mv_image_free(image)
    lib.mv_model_free(model)


def test_bundled_packages_declare_refer_rule():
    for pkg in (PNEUMONIA, FINDINGS):
        m = json.loads((pkg / "manifest.json").read_text())
        for label, op in m["thresholds"].items():
            assert op["refer_rule"]["mode"] == "predictive_value", (pkg, label)
            assert op["refer_rule"]["target_npv"] == 0.95 and op["refer_rule"]["target_ppv"] == 0.9


def test_refer_names_its_rule(mv, tmp_path):
    """Every image referred (band [0, 1]): the CLI, Python and JSON name the rule of the band."""
    def widen(m):
        m["thresholds"]["Pneumonia"]["refer_band"] = [0.0, 1.0]

    pkg = copy_package(PNEUMONIA, tmp_path / "pkg", widen)
    text = "predictive-value band: NPV >= 0.95 below, PPV >= 0.90 above"
    r = cli("classify", str(EXAMPLE_DCM), "--model", str(pkg), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "REFER: in the refer band" in r.stdout and text in r.stdout
    with mv.Model(str(pkg), device="cpu") as m:
        s = m.classify(EXAMPLE_DCM)["Pneumonia"]
    assert s.refer and text in s.describe()
    assert s.operating_point["refer_rule"]["mode"] == "predictive_value"

    def unrecorded(m):
        m["thresholds"]["Pneumonia"]["refer_band"] = [0.0, 1.0]
        del m["thresholds"]["Pneumonia"]["refer_rule"]

    old = copy_package(PNEUMONIA, tmp_path / "old", unrecorded)
    r = cli("classify", str(EXAMPLE_DCM), "--model", str(old), "--device", "cpu")
    assert "band rule not recorded in the package" in r.stdout


def test_calibrate_writes_refer_rule(mv, tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    logits = (rng.normal(0, 1, 300) + 2.0 * y).reshape(-1, 1).astype(np.float32)
    with mv.Model(str(PNEUMONIA), device="cpu") as m:
        rep = mv.calibrate(m, logits, y.reshape(-1, 1), tmp_path / "out")
    rule = rep.thresholds["Pneumonia"]["refer_rule"]
    assert rule == {"mode": "predictive_value", "target_npv": 0.95, "target_ppv": 0.9}
    # The written package reads back and its results name the rule.
    with mv.Model(str(tmp_path / "out"), device="cpu") as m:
        assert m.manifest["thresholds"]["Pneumonia"]["refer_rule"] == rule
