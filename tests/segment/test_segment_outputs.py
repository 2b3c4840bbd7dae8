"""`medvision segment` end to end on a synthetic DICOM series (written here with pydicom) and a
tiny TorchScript threshold model (made here with torch): the NIfTI label map reopens in nibabel
with the series' affine, the DICOM SEG reads back with pydicom and DCMTK, its frames match the
mask and reference the source instances, the PNG overlay is written, and the JSON measures the
regions in mL."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from synth_series import write_ct_series  # noqa: E402

CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
N, ROWS, COLS = 6, 20, 24
SPACING = (0.7, 0.8, 2.5)  # column, row, slice (mm)


def block(k, y, x):  # HU 500 inside, -1000 outside; two classes by intensity
    if 1 <= k <= 3 and 4 <= y <= 11 and 5 <= x <= 14:
        return 500
    if 4 <= k <= 4 and 14 <= y <= 17 and 2 <= x <= 6:
        return 150
    return -1000


def write_series(folder):
    hu = [np.array([[block(k, y, x) for x in range(COLS)] for y in range(ROWS)]) for k in range(N)]
    patient = {"PatientName": "Doe^Jane", "PatientID": "P123", "PatientBirthDate": "19700101",
               "PatientSex": "F"}
    return write_ct_series(folder, [h + 1024 for h in hu], (-10.0, 20.0, 30.0), SPACING, patient)


class Threshold(torch.nn.Module):
    """Softmax over background / dense (> 300 HU) / soft (0..300 HU), on HU."""

    def forward(self, x):
        dense = (x - 300.0) * 0.1
        soft = torch.minimum(x, 300.0 - x) * 0.1
        return torch.cat([torch.zeros_like(x), dense, soft], dim=1)


def make_package(folder):
    folder.mkdir()
    torch.jit.script(Threshold()).save(str(folder / "model.pt"))
    m = {"format_version": 1, "name": "tiny-threshold", "version": "0.1.0", "task": "segmentation",
         "labels": ["background", "dense", "soft"],
         "input": {"channels": 1, "size": [4, 16, 16], "ndim": 3, "spacing": None},
         "preprocess": [], "output": {"activation": "softmax"},
         "segmentation": {"overlap": 0.5, "regions": {"all": ["dense", "soft"]},
                          "codes": {"dense": {
                              "category": {"value": "123037004", "scheme": "SCT",
                                           "meaning": "Anatomical Structure"},
                              "type": {"value": "5713008", "scheme": "SCT", "meaning": "Bone"}}}},
         "notice": "Test model. Not for diagnostic use.",
         "sha256": hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def expected_mask():
    lab = np.zeros((N, ROWS, COLS), np.uint8)
    for k in range(N):
        for y in range(ROWS):
            for x in range(COLS):
                v = block(k, y, x)
                lab[k, y, x] = 1 if v > 300 else (2 if v > 0 else 0)
    return lab


def test_segment_writes_nifti_png_and_dicom_seg(tmp_path):
    series_dir = tmp_path / "series"
    series_dir.mkdir()
    sources = write_series(series_dir)
    pkg = make_package(tmp_path / "pkg")
    out = tmp_path / "out"
    run = subprocess.run([CLI, "segment", str(series_dir), "-m", str(pkg), "--device", "cpu",
                          "--out", str(out), "--nifti", "--png", "--dicom-seg", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[0])
    want = expected_mask()

    # JSON: regions in mL with the series' voxel size; classes; notice.
    assert result["classes"] == ["background", "dense", "soft"]
    regions = {r["name"]: r for r in result["regions"]}
    voxel_ml = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
    assert regions["dense"]["voxels"] == int((want == 1).sum())
    assert regions["dense"]["volume_ml"] == pytest.approx((want == 1).sum() * voxel_ml)
    assert regions["all"]["voxels"] == int((want > 0).sum())
    assert regions["dense"]["bbox_min"] == [5, 4, 1] and regions["dense"]["bbox_max"] == [14, 11, 3]
    assert "Not for diagnostic use" in result["notice"]

    # NIfTI: nibabel sees the mask on the series' grid with the series' affine (LPS -> RAS).
    img = nib.load(str(out / "series.seg.nii.gz"))
    data = np.asarray(img.dataobj)
    assert img.get_data_dtype() == np.uint8
    assert np.array_equal(data.transpose(2, 1, 0), want)  # nibabel [i, j, k]
    lps = np.eye(4)
    lps[:3, :3] = np.diag(SPACING)
    lps[:3, 3] = [-10.0, 20.0, 30.0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    assert np.allclose(img.affine, ras, atol=1e-4)

    # DICOM SEG: pydicom reads it; frames are the mask's slices and reference the source.
    seg = pydicom.dcmread(str(out / "series.seg.dcm"))
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert seg.PatientID == sources[0].PatientID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["dense", "soft"]
    # Codes: the manifest's for "dense", the generic "Tissue" for "soft".
    codes = [(s.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
              s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
              s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
              s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning) for s in seg.SegmentSequence]
    assert codes == [("123037004", "5713008", "SCT", "Bone"), ("85756007", "85756007", "SCT", "Tissue")]
    frames = seg.pixel_array.reshape(-1, ROWS, COLS)
    by_uid = {ds.SOPInstanceUID: k for k, ds in enumerate(sources)}
    seen = set()
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        segment = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        ref = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = by_uid[ref]
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        assert z == pytest.approx(30.0 + SPACING[2] * k)
        assert np.array_equal(frames[f], (want[k] == segment).astype(frames.dtype))
        seen.add((segment, k))
    expected_frames = {(s, k) for s in (1, 2) for k in range(N) if (want[k] == s).any()}
    assert seen == expected_frames

    # DCMTK reads it too.
    dump = subprocess.run(["dcmdump", str(out / "series.seg.dcm")], capture_output=True, text=True)
    assert dump.returncode == 0 and "SegmentationStorage" in dump.stdout.replace(" ", "")

    # PNG overlay: the slice with the most foreground, outline colours present.
    png = np.asarray(Image.open(out / "series.overlay.png").convert("RGB"))
    # The picture at the top left, the margin (model, notice, legend) below and beside it.
    assert png.shape[0] > ROWS and png.shape[1] >= COLS and png.shape[2] == 3
    picture = png[:ROWS, :COLS].reshape(-1, 3)
    orange = (picture == (230, 159, 0)).all(axis=1)  # the first class's (Okabe-Ito) outline
    assert orange.any()


def test_segment_dicom_seg_needs_dicom_files(tmp_path):
    pkg = make_package(tmp_path / "pkg")
    vol = np.full((COLS, ROWS, N), -1000.0, np.float32)
    vol[5:15, 4:12, 1:4] = 500.0
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "v.nii.gz"))
    run = subprocess.run([CLI, "segment", str(tmp_path / "v.nii.gz"), "-m", str(pkg), "--device",
                          "cpu", "--out", str(tmp_path / "o"), "--dicom-seg"],
                         capture_output=True, text=True)
    assert run.returncode == 10 + 1  # MV_ERR_INVALID_ARGUMENT
    assert "MV_ERR_INVALID_ARGUMENT" in run.stderr and "DICOM" in run.stderr
