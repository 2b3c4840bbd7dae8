"""The writers' files read by independent readers: NIfTI with nibabel, DICOM SEG and Secondary
Capture with pydicom. The source series is written here with pydicom; writers_tool (MV_WRITERS_TOOL)
writes the outputs from the fixtures in tests/support/writer_fixtures.hpp, restated below."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from synth_series import write_ct_series  # noqa: E402

TOOL = os.environ.get("MV_WRITERS_TOOL", "")
if not TOOL:
    pytest.skip("MV_WRITERS_TOOL is not set (run through ctest)", allow_module_level=True)

MV_ERR_INVALID_ARGUMENT = 1
NOTICE = "Not for diagnostic use"


def run_tool(*args):
    return subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)


# ---- NIfTI ---------------------------------------------------------------------------------


def expected_ras_affine():
    a, b = math.radians(30), math.radians(20)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    lps = np.eye(4)
    lps[:3, :3] = (rz @ rx) @ np.diag([0.7, 0.9, 2.5])
    lps[:3, 3] = [-12.5, 30.25, -100.0]
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # LPS -> RAS flips x and y


def expected_volume(channels):
    # nibabel's array is indexed [i, j, k, c] (x fastest on disk).
    i, j, k, c = np.meshgrid(np.arange(5), np.arange(7), np.arange(6), np.arange(channels),
                             indexing="ij")
    v = c * 1000 + k * 100 + j * 10 + i
    return v[..., 0] if channels == 1 else v


@pytest.mark.parametrize("name", ["vol.nii", "vol.nii.gz"])
@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("dtype", ["i16", "f32"])
def test_nifti_with_nibabel(tmp_path, name, channels, dtype):
    import nibabel as nib
    out = tmp_path / name
    r = run_tool("nifti", out, channels, dtype)
    assert r.returncode == 0, r.stderr
    img = nib.load(str(out))
    assert img.header["sform_code"] == 1 and img.header["qform_code"] == 1
    assert img.header.get_xyzt_units()[0] == "mm"
    assert img.get_data_dtype() == (np.int16 if dtype == "i16" else np.float32)
    np.testing.assert_allclose(img.affine, expected_ras_affine(), atol=1e-4)
    np.testing.assert_allclose(img.get_qform(), expected_ras_affine(), atol=1e-4)
    data = np.asarray(img.dataobj)
    assert data.shape == expected_volume(channels).shape
    np.testing.assert_array_equal(data, expected_volume(channels))


# ---- DICOM sources -------------------------------------------------------------------------

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "PID-0042", "PatientBirthDate": "19800101",
           "PatientSex": "F", "PatientAge": "044Y", "OtherPatientIDs": "ALT-7"}


def write_series(folder, n=5):
    """A 32 x 32 CT series along an oblique-free axis, files named against position order."""
    stored = [np.arange(32 * 32, dtype=np.int16).reshape(32, 32) + 10 * k for k in range(n)]
    return write_ct_series(folder, stored, (-16.0, -20.0, 5.0), (0.6, 0.8, 3.0), PATIENT)


def fixture_label(k, y, x):
    if 1 <= k <= 2 and 8 <= y <= 15 and 8 <= x <= 15:
        return 1
    if 2 <= k <= 3 and 18 <= y <= 27 and 4 <= x <= 19:
        return 2
    return 0


def patient_module(ds):
    return {e.keyword: str(e.value) for e in ds if e.tag.group == 0x0010}


# ---- DICOM SEG ----------------------------------------------------------------------------


def test_seg_with_pydicom(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    sources = write_series(folder)
    out = tmp_path / "seg.dcm"
    r = run_tool("seg", folder, out)
    assert r.returncode == 0, r.stderr
    seg = pydicom.dcmread(str(out))
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert seg.SOPInstanceUID not in {s.SOPInstanceUID for s in sources}
    assert "tiny-seg" in seg.SeriesDescription
    assert patient_module(seg) == patient_module(sources[0])
    assert seg.AccessionNumber == "A1" and seg.StudyDescription == "CT CHEST"
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Lesion", "Organ"]
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("tiny-seg", "1.2.3")
    # Referenced Series Sequence lists every source instance.
    refs = seg.ReferencedSeriesSequence[0]
    assert refs.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in refs.ReferencedInstanceSequence} == \
        {s.SOPInstanceUID for s in sources}

    index = {s.SOPInstanceUID: k for k, s in enumerate(sources)}
    frames = seg.pixel_array.reshape(-1, 32, 32)
    assert frames.shape[0] == int(seg.NumberOfFrames) == 4  # (1,1) (1,2) (2,2) (2,3)
    seen = set()
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        src = item.DerivationImageSequence[0].SourceImageSequence[0]
        k = index[src.ReferencedSOPInstanceUID]
        assert src.ReferencedSOPClassUID == pydicom.uid.CTImageStorage
        expected = np.array([[fixture_label(k, y, x) == number for x in range(32)]
                             for y in range(32)])
        np.testing.assert_array_equal(frames[f].astype(bool), expected, err_msg=f"frame {f}")
        position = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        np.testing.assert_allclose(position, [float(v) for v in sources[k].ImagePositionPatient],
                                   atol=1e-3)
        seen.add((number, k))
    assert seen == {(1, 1), (1, 2), (2, 2), (2, 3)}
    shared = seg.SharedFunctionalGroupsSequence[0]
    np.testing.assert_allclose([float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing],
                               [0.8, 0.6])


# ---- Secondary Capture ----------------------------------------------------------------------


def test_secondary_capture_with_pydicom(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    source = write_series(folder, n=1)[0]
    src_path = next(folder.iterdir())
    out = tmp_path / "sc.dcm"
    r = run_tool("sc", src_path, out)
    assert r.returncode == 0, r.stderr
    sc = pydicom.dcmread(str(out))
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.SeriesInstanceUID != source.SeriesInstanceUID
    assert sc.SOPInstanceUID != source.SOPInstanceUID
    assert "tiny-seg" in sc.SeriesDescription
    assert NOTICE in sc.ImageComments and NOTICE in sc.DerivationDescription
    # No patient data beyond the source's: the same patient-level attributes, the same values.
    assert patient_module(sc) == patient_module(source)
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    y, x = np.mgrid[0:32, 0:32]
    expected = np.stack([(7 * x) % 256, (5 * y) % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    np.testing.assert_array_equal(sc.pixel_array, expected)


def test_memory_source_is_refused(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    write_series(folder, n=1)
    r = run_tool("sc-memory", next(folder.iterdir()), tmp_path / "sc.dcm")
    assert r.returncode == MV_ERR_INVALID_ARGUMENT
    assert "memory" in r.stderr
    assert "Doe" not in r.stderr and "PID-0042" not in r.stderr
    assert not (tmp_path / "sc.dcm").exists()
