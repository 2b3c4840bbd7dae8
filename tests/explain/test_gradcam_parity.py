"""medvision's C++ Grad-CAM and Grad-CAM++ against an independent Python implementation on the
same TorchScript (the bundled cxr-pneumonia package) and real chest X-rays.

The Python side preprocesses with the reference implementation of the manifest steps
(models/common/preprocess.py), gets the feature maps and their gradients with PyTorch autograd,
weights them with the formulas of pytorch-grad-cam (Grad-CAM: mean gradient; Grad-CAM++:
g^2 / (2 g^2 + sum(A) g^3) times relu(g)), then brings the map to the model input and back to the
image size with cv2.resize (bilinear, half-pixel centres). Pearson correlation with the map
`medvision explain --npy` writes must exceed 0.99.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402
from cam_reference import cam_weights  # noqa: E402
sys.path.insert(0, str(ROOT / "models"))
from common.preprocess import apply_steps  # noqa: E402

PACKAGE = ROOT / "models" / "cxr-pneumonia" / "package"
CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
IMAGES = ["nih14/images/00000075_000.png", "nih14/images/00000100_000.png",
          "jsrt/images/JPCLN001.png", "jsrt/images/JPCNN010.png",
          "nih14/images/00000211_000.png", "jsrt/images/JPCLN050.png"]


def python_cam(image: np.ndarray, method: str) -> np.ndarray:
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    if image.ndim == 3:  # colour PNG (some NIH images are RGBA): RGB planes, alpha dropped
        planes = image[..., [2, 1, 0]].transpose(2, 0, 1)
    else:
        planes = image[None]
    x = apply_steps(planes.astype(np.float32), manifest["preprocess"])  # [C, H, W]
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
    model = torch.jit.load(str(PACKAGE / "model.pt")).eval()
    with torch.no_grad():
        label = int(model(x)[0].argmax())
    feats = model.features(x).detach().requires_grad_(True)
    score = model.head(feats)[:, label].sum()
    (grads,) = torch.autograd.grad(score, feats)
    a, g = feats.detach()[0].double().numpy(), grads[0].double().numpy()
    w = cam_weights(a, g, method)
    cam = np.maximum((w[:, None, None] * a).sum(0), 0)
    cam = (cam - cam.min()) / (cam.max() - cam.min() + 1e-7)
    h, w_ = x.shape[-2:]
    cam = cv2.resize(cam.astype(np.float32), (w_, h), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(cam, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("rel", IMAGES)
def test_gradcam_matches_python(rel, method, tmp_path):
    path = data_or_skip(rel)
    npy = tmp_path / "map.npy"
    subprocess.run([CLI, "explain", str(path), "--model", str(PACKAGE), "--method", method,
                    "--out", str(tmp_path / "overlay.png"), "--npy", str(npy)],
                   check=True, capture_output=True)
    ours = np.load(npy).astype(np.float64)
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    theirs = python_cam(image, method)
    assert ours.shape == theirs.shape
    r = np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]
    print(f"{rel} {method}: Pearson {r:.5f}, max |diff| {np.abs(ours - theirs).max():.4f}")
    assert r > 0.99
