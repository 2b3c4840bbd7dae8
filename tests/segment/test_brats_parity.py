"""`medvision segment` against an independent Python implementation of Gaussian sliding-window
inference (sliding_window_reference.py: nibabel orientation, numpy z-score, torch MONAI-style
windows) on the same TorchScript (the bundled brain-tumour package) and a real BraTS volume
(240 x 240 x 155, FLAIR + T1). Probabilities on the input grid must agree to < 1e-4."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402
sys.path.insert(0, str(HERE))
from sliding_window_reference import segment_files  # noqa: E402

PACKAGE = ROOT / "models" / "brain-tumour" / "package"
CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
CASE = "brats/bratsreg2018-flair-t1/case_5"  # a validation case of the model


def test_sliding_window_matches_python_reference(tmp_path):
    case = data_or_skip(CASE)
    files = [case / "FLAIR.nii.gz", case / "T1.nii.gz"]
    out = subprocess.run(
        [CLI, "segment", *map(str, files), "--stack", "-m", str(PACKAGE), "--device", "cpu",
         "--probabilities", "--npy", "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.splitlines()[0])
    ours = np.load(tmp_path / "FLAIR.prob.npy")
    mask = np.load(tmp_path / "FLAIR.mask.npy")
    assert ours.shape == (1, 155, 240, 240)

    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    torch.set_num_threads(os.cpu_count() or 1)
    model = torch.jit.load(str(PACKAGE / "model.pt")).eval()
    ref = segment_files(files, model, manifest["input"]["size"],
                        overlap=manifest["segmentation"]["overlap"], sw_batch_size=4)
    diff = np.abs(ours - ref)
    print(f"\nbrats parity: max |p_medvision - p_python| = {diff.max():.2e}, "
          f"mean {diff.mean():.2e}; foreground {int((mask > 0).sum())} voxels")
    assert diff.max() < 1e-4

    # The label map is the thresholded probability map; the JSON measures it.
    assert np.array_equal(mask[None] > 0, ours > 0.5)
    region = result["regions"][0]
    assert region["name"] == "whole_tumour"
    assert region["voxels"] == int((mask > 0).sum())
    assert region["volume_ml"] == pytest.approx(region["voxels"] / 1000.0)  # 1 mm voxels
    assert "Not for diagnostic use" in result["notice"]
