"""medvision's segmentation Grad-CAM and Grad-CAM++ against an independent Python implementation
on the same TorchScript (the bundled cxr-lungs package) and real chest X-rays (JSRT).

The Python side preprocesses with the reference implementation of the manifest steps
(models/common/preprocess.py), runs the package's explain_forward with PyTorch autograd, takes
as target the class's logits summed over the pixels where the class wins the argmax (the
region pytorch-grad-cam's SemanticSegmentationTarget uses), weights the bottleneck activations
with the Grad-CAM / Grad-CAM++ formulas, applies ReLU, brings the map to the model input with
torch's bilinear interpolation and to the image with cv2.resize, and scales it to a maximum of 1.
Pearson correlation with `medvision explain --npy` must exceed 0.99; the region's size and mean
probability must agree too.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402
from cam_reference import cam_weights  # noqa: E402
sys.path.insert(0, str(ROOT / "models"))
from common.preprocess import apply_steps  # noqa: E402

PACKAGE = ROOT / "models" / "cxr-lungs" / "package"
CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
IMAGES = ["jsrt/images/JPCLN001.png", "jsrt/images/JPCNN010.png"]


def python_seg_cam(image: np.ndarray, label: str, method: str):
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    cls = manifest["labels"].index(label)
    x = apply_steps(image[None].astype(np.float32), manifest["preprocess"])  # [1, H, W]
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].requires_grad_(True)
    model = torch.jit.load(str(PACKAGE / "model.pt")).eval()
    out, act = model.explain_forward(x)
    region = out.argmax(1) == cls
    target = (out[:, cls] * region).sum()
    (grads,) = torch.autograd.grad(target, act)
    a, g = act.detach()[0].double().numpy(), grads[0].double().numpy()
    w = cam_weights(a, g, method)
    cam = np.maximum((w[:, None, None] * a).sum(0), 0)
    cam = F.interpolate(torch.from_numpy(cam)[None, None].float(), size=tuple(x.shape[-2:]),
                        mode="bilinear", align_corners=False)[0, 0].numpy()
    cam = cv2.resize(cam, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    cam = cam / cam.max()
    prob = torch.softmax(out.detach(), 1)[0, cls]
    region_img = cv2.resize(region[0].float().numpy(), (image.shape[1], image.shape[0]),
                            interpolation=cv2.INTER_LINEAR) > 0.5
    return cam, float(prob[region[0]].mean()), int(region_img.sum())


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("label", ["left_lung", "right_lung", "heart"])
@pytest.mark.parametrize("rel", IMAGES)
def test_segmentation_gradcam_matches_python(rel, label, method, tmp_path):
    path = data_or_skip(rel)
    npy = tmp_path / "map.npy"
    run = subprocess.run([CLI, "explain", str(path), "--model", str(PACKAGE), "--label", label,
                          "--method", method, "--out", str(tmp_path / "overlay.png"),
                          "--npy", str(npy), "--json"],
                         check=True, capture_output=True, text=True)
    report = json.loads(run.stdout)["heatmap"]
    ours = np.load(npy).astype(np.float64)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    theirs, prob, voxels = python_seg_cam(image, label, method)
    assert ours.shape == theirs.shape
    r = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
    print(f"{rel} {label} {method}: Pearson {r:.5f}, max |diff| {np.abs(ours - theirs).max():.4f}, "
          f"region {report['region_voxels']} vs {voxels} px, mean p {report['probability']:.4f} vs {prob:.4f}")
    assert r > 0.99
    assert report["probability"] == pytest.approx(prob, abs=5e-3)  # input grid vs model grid
    assert abs(report["region_voxels"] - voxels) <= 0.01 * voxels
