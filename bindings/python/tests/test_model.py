"""Models through the Pythonic surface: inputs of every kind, results as dataclasses, zero-copy
heat maps, calibration and the drift check."""
import dataclasses
import json

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, kermany


def test_model_description(mv, pneumonia):
    assert pneumonia.name == "cxr-pneumonia" and pneumonia.task == "classification"
    assert pneumonia.labels == ["Pneumonia"] and pneumonia.device == "cpu"
    assert "diagnostic" in pneumonia.notice
    assert pneumonia.manifest["name"] == "cxr-pneumonia"
    assert any(p.endswith("cxr-pneumonia/package") for p in mv.list_models())


def test_classify_accepts_every_input_kind(mv, pneumonia, example_image):
    ref = pneumonia.classify(example_image)
    assert ref.source is None
    # Every result names its task, in the JSON and through the binding (mv_task_name).
    assert ref._handle.task == pneumonia.task == "classification"
    assert json.loads(ref._handle.json)["task"] == ref.to_dict()["task"] == "classification"
    by_path = pneumonia.classify(EXAMPLE_DCM)
    assert by_path.source == str(EXAMPLE_DCM)
    by_bytes = pneumonia.classify(EXAMPLE_DCM.read_bytes())
    by_array = pneumonia.classify(example_image.array[0, 0])
    for r in (by_path, by_bytes, by_array):
        assert r.scores == ref.scores
    batch = pneumonia.classify([example_image, str(EXAMPLE_DCM)], batch_size=1)
    assert [r.scores for r in batch] == [ref.scores, ref.scores]
    assert pneumonia.classify([]) == []


def test_result_dataclasses(mv, pneumonia, example_image):
    r = pneumonia.classify(example_image)
    assert dataclasses.is_dataclass(r) and isinstance(r, mv.Classification)
    top = r.top
    assert isinstance(top, mv.LabelScore) and top is r["Pneumonia"]
    assert 0.0 <= top.probability <= 1.0 and top.calibrated is not None
    assert top.decision in (True, False) and isinstance(top.refer, bool)
    assert r.probabilities == {"Pneumonia": top.probability}
    assert r.logits.dtype == np.float32 and r.logits.shape == (1,)
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["model"] == {"name": "cxr-pneumonia", "version": pneumonia.version}
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.model = "x"


def test_explanation_heatmap_is_a_view(mv, pneumonia, example_image):
    e = pneumonia.explain(example_image, label="Pneumonia")
    assert isinstance(e, mv.Explanation)
    assert e.heatmap.shape == (example_image.height, example_image.width)
    assert e.heatmap.dtype == np.float32 and not e.heatmap.flags.writeable
    assert np.shares_memory(e.heatmap, e._handle.array)
    assert 0.0 <= e.heatmap.min() and e.heatmap.max() <= 1.0
    rgb = e.overlay(example_image)
    assert rgb.shape == (*e.shape, 3) and rgb.dtype == np.uint8 and rgb.flags.owndata is False
    d = e.to_dict()
    assert d["label"] == "Pneumonia" and d["shape"] == list(e.shape) and "heatmap" not in d
    assert pneumonia.explain(example_image, method="gradcam++").method == "gradcam++"


def test_calibrate_and_drift_check(mv, tmp_path):
    files = kermany(12, "NORMAL") + kermany(12, "PNEUMONIA")
    labels = [0] * 12 + [1] * 12
    with mv.Model("cxr-pneumonia") as model:
        logits = model.logits(files, batch_size=8)
        assert logits.shape == (24, 1)
        report = mv.calibrate(model, logits, labels, tmp_path / "recal", method="platt",
                              version="9.9.9-test", description="pytest")
        assert report.version == "9.9.9-test" and report.name == "cxr-pneumonia"
        assert (tmp_path / "recal" / "manifest.json").exists()
        # From images instead of logits: the same fit.
        again = mv.calibrate(model, files, labels, tmp_path / "recal2", method="platt",
                             version="9.9.9-test", description="pytest")
        assert again.calibration["method"] == "platt"
        assert again.calibration["labels"] == report.calibration["labels"]
        assert again.thresholds == report.thresholds and report.report["after"]
    with mv.Model(tmp_path / "recal") as recal:
        assert recal.version == "9.9.9-test"
        r = recal.classify(files[0])
        assert r.top.calibrated is not None
        drift = recal.drift_check(logits)
        assert isinstance(drift, mv.DriftReport) and drift.batch_size == 24
        assert not drift.shifted  # the very distribution it was calibrated on
        shifted = recal.drift_check(logits + 8.0)
        assert shifted.shifted and shifted.labels[0].label == "Pneumonia"
        assert json.loads(json.dumps(shifted.to_dict()))["shifted"] is True


def _softmax_package(folder):
    """A tiny softmax package (3 classes scored from the mean grey level), made with torch."""
    import hashlib

    torch = pytest.importorskip("torch")

    class Intensity(torch.nn.Module):
        def forward(self, x):
            m = x.mean(dim=[2, 3])
            return -20.0 * (m - torch.tensor([0.2, 0.5, 0.8]).view(1, -1)) ** 2

    folder.mkdir()
    torch.jit.script(Intensity()).save(str(folder / "model.pt"))
    manifest = {"format_version": 1, "name": "tiny-intensity", "version": "0.1.0",
                "task": "classification", "labels": ["dark", "mid", "bright"],
                "input": {"channels": 1, "size": [8, 8]},
                "preprocess": [{"op": "scale", "mode": "fixed", "min": 0.0, "max": 255.0},
                               {"op": "resize", "mode": "stretch", "size": [8, 8]},
                               {"op": "channels", "channels": 1}],
                "output": {"activation": "softmax"},
                "notice": "Test model. Not for diagnostic use.",
                "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_calibrate_conformal_score_aps(mv, pneumonia, tmp_path):
    """conformal_score="aps" reaches the manifest and the results; sigmoid models refuse it."""
    package = _softmax_package(tmp_path / "pkg")
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 3.0, (300, 3)).astype(np.float32)
    p = np.exp(logits / 2.0)
    labels = [["dark", "mid", "bright"][rng.choice(3, p=row / row.sum())] for row in p]
    with mv.Model(package) as model:
        report = mv.calibrate(model, logits, labels, tmp_path / "aps", conformal_alpha=0.2,
                              conformal_score="aps", version="0.1.0-aps")
        assert report.calibration["conformal"]["score"] == "aps"
        assert report.calibration["conformal"]["alpha"] == 0.2
        lac = mv.calibrate(model, logits, labels, tmp_path / "lac", conformal_alpha=0.2)
        assert lac.calibration["conformal"]["score"] == "lac"  # the default
        with pytest.raises(mv.InvalidArgumentError, match="'lac' or 'aps'"):
            mv.calibrate(model, logits, labels, tmp_path / "x", conformal_alpha=0.2,
                         conformal_score="raps")
    with mv.Model(tmp_path / "aps") as aps:
        r = aps.classify(np.full((8, 8), 90, np.uint8))
        assert r.conformal["alpha"] == 0.2 and set(r.conformal["set"]) <= {"dark", "mid", "bright"}
    with pytest.raises(mv.InvalidArgumentError, match="softmax"):
        mv.calibrate(pneumonia, np.zeros((4, 1), np.float32), [0, 1, 0, 1], tmp_path / "y",
                     conformal_alpha=0.2, conformal_score="aps")
    assert not (tmp_path / "y").exists()


def test_library_log_reaches_python_logging(mv, pneumonia, caplog):
    """Warnings from inside a GIL-released call reach the `logging` logger "medvision"."""
    import logging
    import threading

    blank = mv.from_numpy(np.zeros((64, 64, 3), np.uint8))
    mv.enable_logging(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="medvision"):
            t = threading.Thread(target=pneumonia.classify, args=(blank,))
            t.start()
            t.join()
    finally:
        mv.disable_logging()
    messages = [r.getMessage() for r in caplog.records if r.name == "medvision"]
    assert any("colour image" in m and "cxr-pneumonia" in m for m in messages), messages
    caplog.clear()
    pneumonia.classify(blank)  # removed: nothing more arrives
    assert not [r for r in caplog.records if r.name == "medvision"]


def test_calibrate_defaults_are_the_c_librarys(mv):
    """calibrate()'s defaults are read from mv_calibrate_options_init(), never restated."""
    import inspect

    c = mv.CalibrateOptions()
    assert (c.method, c.rule, c.refer_mode, c.conformal_score) == (
        "temperature", "youden", "predictive-value", "lac")
    assert (c.target, c.refer_half_width, c.refer_logit_half_width) == (0.9, 0.1, 0.4)
    assert (c.refer_npv, c.refer_ppv, c.alpha, c.conformal) == (0.95, 0.9, 0.1, False)
    params = inspect.signature(mv.calibrate).parameters
    for name in ("method", "rule", "target", "refer_mode", "refer_half_width",
                 "refer_logit_half_width", "refer_npv", "refer_ppv", "conformal_score"):
        assert params[name].default == getattr(c, name), name
    # Values by the C library's names; anything else is refused with the names listed.
    c.refer_mode = "fixed"
    assert c.refer_mode == "fixed"
    with pytest.raises(mv.InvalidArgumentError, match="'logit', 'fixed', 'predictive-value' or"):
        c.refer_mode = "wide"
    with pytest.raises(mv.InvalidArgumentError, match="'temperature', 'platt' or 'isotonic'"):
        c.method = "Platt"
    assert c.method == "temperature"  # untouched by the failed set


def test_calibrate_refer_band_rules_and_report(mv, pneumonia, tmp_path):
    """Every refer-band rule of the C API can be chosen from Python, and the report is the one
    the library returns (equal to what it wrote)."""
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 3.0, (200, 1)).astype(np.float32)
    y = (rng.random(200) < 1 / (1 + np.exp(-z[:, 0] / 2))).astype(np.int32)
    fixed = mv.calibrate(pneumonia, z, y, tmp_path / "fixed", refer_mode="fixed",
                         refer_half_width=0.05)
    op = fixed.thresholds["Pneumonia"]
    t = op["threshold"]
    assert op["refer_band"] == pytest.approx([max(0.0, t - 0.05), min(1.0, t + 0.05)])
    logit = mv.calibrate(pneumonia, z, y, tmp_path / "logit", refer_mode="logit",
                         refer_logit_half_width=1.0)
    op = logit.thresholds["Pneumonia"]
    lo, hi = op["refer_band"]
    zt = np.log(op["threshold"] / (1 - op["threshold"]))
    assert np.log(lo / (1 - lo)) == pytest.approx(zt - 1.0)
    assert np.log(hi / (1 - hi)) == pytest.approx(zt + 1.0)
    none = mv.calibrate(pneumonia, z, y, tmp_path / "none", refer_mode="none")
    assert none.thresholds["Pneumonia"]["refer_band"] is None
    pv = mv.calibrate(pneumonia, z, y, tmp_path / "pv", refer_npv=0.99, refer_ppv=0.99)
    pv_loose = mv.calibrate(pneumonia, z, y, tmp_path / "pv2", refer_npv=0.6, refer_ppv=0.6)
    band = pv.thresholds["Pneumonia"]["refer_band"]
    loose = pv_loose.thresholds["Pneumonia"]["refer_band"]
    assert band[0] <= loose[0] and band[1] >= loose[1]  # stricter targets, a wider band
    # The report returned is what was written.
    on_disk = json.loads((tmp_path / "fixed" / "manifest.json").read_text())
    assert fixed.thresholds == on_disk["thresholds"]
    assert fixed.calibration == on_disk["calibration"]
    assert fixed.report == json.loads((tmp_path / "fixed" / "calibration-report.json").read_text())
    assert fixed.version == on_disk["version"] and fixed.out_dir == str(tmp_path / "fixed")


def test_model_activation(mv, pneumonia, tmp_path):
    assert pneumonia.activation == "sigmoid"
    with mv.Model(_softmax_package(tmp_path / "pkg")) as m:
        assert m.activation == "softmax"
