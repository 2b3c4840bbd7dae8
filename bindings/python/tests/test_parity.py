"""Parity: Python gives the same numbers as the C ABI and as the medvision CLI on the same inputs.

- one image per call: Python Model.classify(image) vs a C program calling mv_model_run
  (capi_classify.c): logits, probabilities and calibrated probabilities identical (float32);
- batches: Python classify(list, batch_size=8) vs `medvision classify --json --batch 8`: the
  to_dict() objects equal the CLI's JSON lines exactly;
- explanations: the heat map equals `medvision explain --npy` bit for bit, and the overlay
  PNG equals the CLI's.
"""
import json
import subprocess

import numpy as np
import pytest

from conftest import CAPI_CLASSIFY, CLI, EXAMPLE_DCM, data_path, kermany, tool


@pytest.fixture(scope="module")
def files():
    return [str(EXAMPLE_DCM)] + kermany(3, "NORMAL") + kermany(3, "PNEUMONIA")


def nih_files():
    folder = data_path("nih14/images")
    return sorted(str(p) for p in folder.glob("*.png"))[:5]


@pytest.mark.parametrize("model_name", ["cxr-pneumonia", "cxr-findings"])
def test_single_image_parity_with_c_abi(mv, files, model_name):
    inputs = files if model_name == "cxr-pneumonia" else nih_files()
    out = subprocess.run([str(tool(CAPI_CLASSIFY)), model_name, *inputs], check=True,
                         capture_output=True, text=True).stdout
    c_rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in c_rows] == inputs
    with mv.Model(model_name) as model:
        for row, path in zip(c_rows, inputs):
            r = model.classify(path)
            f32 = lambda xs: np.array(xs, dtype=np.float32)  # noqa: E731
            np.testing.assert_array_equal(f32([s.logit for s in r.scores]), f32(row["logits"]))
            np.testing.assert_array_equal(f32([s.probability for s in r.scores]),
                                          f32(row["probabilities"]))
            cal = [np.nan if s.calibrated is None else s.calibrated for s in r.scores]
            np.testing.assert_array_equal(f32(cal), f32(row["calibrated"]))


@pytest.mark.parametrize("model_name", ["cxr-pneumonia", "cxr-findings"])
def test_batch_parity_with_cli_json(mv, files, model_name):
    inputs = files if model_name == "cxr-pneumonia" else nih_files()
    out = subprocess.run([str(tool(CLI)), "classify", "--model", model_name, "--json",
                          "--batch", "8", *inputs], check=True, capture_output=True,
                         text=True).stdout
    cli = [json.loads(line) for line in out.splitlines()]
    with mv.Model(model_name) as model:
        py = [r.to_dict() for r in model.classify(inputs, batch_size=8)]
        assert py == cli
        # The same image alone or in a batch: equal to float32 rounding of the backend.
        single = model.classify(inputs[0])
        batched = model.classify(inputs, batch_size=8)[0]
        np.testing.assert_allclose(single.logits, batched.logits, rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_explain_parity_with_cli_npy(mv, pneumonia, tmp_path, method):
    path = kermany(1, "PNEUMONIA")[0]
    npy, png = tmp_path / "map.npy", tmp_path / "cli.png"
    subprocess.run([str(tool(CLI)), "explain", path, "--model", "cxr-pneumonia", "--method",
                    method, "--npy", str(npy), "--out", str(png)], check=True,
                   capture_output=True)
    image = mv.load_image(path)
    e = pneumonia.explain(image, method=method)
    np.testing.assert_array_equal(e.heatmap, np.load(npy))
    e.write_png(tmp_path / "py.png", image)
    a, b = mv.load_image(tmp_path / "py.png").array, mv.load_image(png).array
    np.testing.assert_array_equal(a, b)
    # The PNG is the overlay with a margin below it (model, notice, colour bar; issue 16).
    overlay = e.overlay(image).transpose(2, 0, 1)[:, None]
    h, w = overlay.shape[2:]
    np.testing.assert_array_equal(overlay, a[:, :, :h, :w])
