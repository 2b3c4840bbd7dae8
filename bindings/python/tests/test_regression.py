"""SCRATCH (issue 20 "Add a task" trial): a regression task end to end. A tiny TorchScript
regression package is made at test time; its values through Python and the CLI are checked
against Python torch on the same input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CLI, EXAMPLE_DCM, tool

MAKER = Path(os.environ.get("MV_REGRESSION_MAKER", "/tmp/addtask/make_regression_pkg.py"))


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    if not MAKER.exists():
        pytest.skip(f"{MAKER} not found")
    out = tmp_path_factory.mktemp("regression") / "tiny-ctr"
    subprocess.run([sys.executable, str(MAKER), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image as PILImage

    pixels = np.random.default_rng(5).integers(0, 256, (32, 32), dtype=np.uint8)
    path = tmp_path_factory.mktemp("img") / "img.png"
    PILImage.fromarray(pixels).save(path)
    return path, pixels


def reference(package, pixels):
    import torch

    m = torch.jit.load(str(package / "model.pt"))
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None, None]
    with torch.no_grad():
        return m(x)[0].numpy().astype(np.float64)


def test_python_run_matches_torch(mv, package, image):
    path, pixels = image
    want = reference(package, pixels)
    with mv.Model(str(package)) as model:
        assert model.task == "regression"
        assert model.activation == "identity"
        r = model.run(str(path))
        r2 = model.run(mv.load_image(str(path)))
    assert isinstance(r, mv.Regression)
    assert [v.name for v in r.values] == ["cardiothoracic_ratio", "heart_width"]
    assert [v.unit for v in r.values] == ["1", "mm"]
    np.testing.assert_allclose([v.value for v in r.values], want, rtol=1e-5, atol=1e-6)
    assert r2.values == r.values
    assert r._handle.task == "regression"
    assert "Not for diagnostic use" in r.notice
    j = json.loads(r._handle.json)
    assert j["task"] == "regression" and j["model"] == {"name": "tiny-ctr", "version": "0.0.1"}
    assert [v["value"] for v in j["values"]] == [v.value for v in r.values]
    assert r.to_dict()["values"][1] == {"name": "heart_width", "value": r.values[1].value,
                                        "unit": "mm"}


def test_cli_regress_json_and_text(package, image):
    path, pixels = image
    want = reference(package, pixels)
    cli = tool(CLI)
    p = subprocess.run([str(cli), "regress", "--json", "-m", str(package), str(path)],
                       capture_output=True, text=True, check=True)
    j = json.loads(p.stdout.splitlines()[0])
    assert j["file"] == str(path) and j["task"] == "regression"
    np.testing.assert_allclose([v["value"] for v in j["values"]], want, rtol=1e-5, atol=1e-6)
    assert [v["unit"] for v in j["values"]] == ["1", "mm"]
    p = subprocess.run([str(cli), "regress", "-m", str(package), str(path)],
                       capture_output=True, text=True, check=True)
    assert "tiny-ctr 0.0.1" in p.stdout and "Not for diagnostic use" in p.stdout
    assert "heart_width" in p.stdout and " mm" in p.stdout


def test_cli_regress_refuses_a_classification_model(image):
    p = subprocess.run([str(tool(CLI)), "regress", "-m", "cxr-pneumonia", str(image[0])],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "classification model" in p.stderr


def test_manifest_validation(mv, package, tmp_path):
    import shutil

    for edit, where in [
        (lambda m: m["regression"]["units"].pop("heart_width"), "regression.units.heart_width"),
        (lambda m: m.update(output={"activation": "sigmoid"}), "output.activation"),
        (lambda m: m.pop("regression"), "regression"),
        (lambda m: m.update(thresholds={}), "calibration"),
    ]:
        d = tmp_path / f"bad{len(list(tmp_path.iterdir()))}"
        shutil.copytree(package, d)
        m = json.loads((d / "manifest.json").read_text())
        edit(m)
        (d / "manifest.json").write_text(json.dumps(m))
        with pytest.raises(mv.ModelError, match=where.replace(".", r"\.")):
            mv.Model(str(d))


def test_dicom_sr_is_refused(mv, package):
    with mv.Model(str(package)) as model:
        source = mv.load_image(str(EXAMPLE_DCM))
        r = model.run(source)
        with pytest.raises(mv.MedvisionNotImplementedError, match="regression"):
            r._handle.write_dicom_sr("/tmp/addtask/x.sr.dcm", source, "")
