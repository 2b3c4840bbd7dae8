"""Every error path raises the class of its mv_status, with mv_last_error()'s message."""
import json
import pickle
import shutil

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, ROOT, png_bytes


def check(exc_info, cls, status, *fragments):
    e = exc_info.value
    assert type(e) is cls, type(e)
    assert e.status == status and e.status_name == f"MV_ERR_{status.name}"
    for f in fragments:
        assert f in str(e), (f, str(e))


def test_hierarchy(mv):
    assert issubclass(mv.MedvisionError, RuntimeError)
    assert issubclass(mv.InvalidArgumentError, ValueError)
    assert issubclass(mv.MedvisionOutOfMemoryError, MemoryError)
    assert issubclass(mv.MedvisionFileNotFoundError, FileNotFoundError)
    assert issubclass(mv.MedvisionIOError, OSError)
    assert issubclass(mv.UnsupportedFormatError, mv.FileFormatError)
    assert issubclass(mv.CorruptDataError, mv.FileFormatError)
    assert issubclass(mv.MedvisionNotImplementedError, NotImplementedError)
    for cls in (mv.ModelError, mv.DeviceError, mv.ShapeMismatchError, mv.FileFormatError):
        assert issubclass(cls, mv.MedvisionError)


def test_missing_file(mv, tmp_path):
    path = tmp_path / "nope.dcm"
    with pytest.raises(FileNotFoundError) as ei:
        mv.load_image(path)
    check(ei, mv.MedvisionFileNotFoundError, mv.Status.IO, str(path))


def test_unreadable_folder_is_io_error(mv, tmp_path):
    with pytest.raises(mv.MedvisionIOError) as ei:
        mv.load_image(tmp_path)  # an empty folder: no series to read
    check(ei, mv.MedvisionIOError, mv.Status.IO, str(tmp_path), "no files")


def test_unsupported_format(mv, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, not an image\n" * 40)
    with pytest.raises(mv.UnsupportedFormatError) as ei:
        mv.load_image(p)
    check(ei, mv.UnsupportedFormatError, mv.Status.UNSUPPORTED_FORMAT, str(p), "not a format")
    with pytest.raises(mv.FileFormatError):
        mv.load_image(b"hello, not an image" * 40)


def test_corrupt_data(mv, tmp_path):
    p = tmp_path / "truncated.png"
    p.write_bytes(png_bytes(np.zeros((64, 64), np.uint8))[:60])
    with pytest.raises(mv.CorruptDataError) as ei:
        mv.load_image(p)
    check(ei, mv.CorruptDataError, mv.Status.CORRUPT_DATA, str(p))
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(mv.CorruptDataError, match="empty"):
        mv.load_image(empty)


def test_size_limit_is_out_of_memory(mv):
    with pytest.raises(MemoryError) as ei:
        mv.load_image(EXAMPLE_DCM, max_values=100)
    check(ei, mv.MedvisionOutOfMemoryError, mv.Status.OUT_OF_MEMORY, str(EXAMPLE_DCM))


def test_invalid_arguments(mv, example_image, pneumonia):
    with pytest.raises(mv.InvalidArgumentError) as ei:
        mv.load_image(EXAMPLE_DCM, apply_voi=7)
    check(ei, mv.InvalidArgumentError, mv.Status.INVALID_ARGUMENT, "window preset 7")
    with pytest.raises(mv.InvalidArgumentError, match="not 5-D"):
        mv.from_numpy(np.zeros((2, 2, 2, 2, 2), np.float32))
    with pytest.raises(mv.InvalidArgumentError, match="spacing"):
        mv.from_numpy(np.zeros((4, 4), np.float32), spacing=(1, 0, 1))
    with pytest.raises(mv.InvalidArgumentError, match="precision"):
        mv.Model("cxr-pneumonia", precision="float8")
    with pytest.raises(mv.InvalidArgumentError, match="method"):
        pneumonia.explain(example_image, method="lime")
    with pytest.raises(mv.InvalidArgumentError, match="not a label"):
        pneumonia.explain(example_image, label="Fracture")
    with pytest.raises(mv.InvalidArgumentError) as ei:
        pneumonia.explain(example_image, label=5)
    assert "label" in str(ei.value)
    with pytest.raises(TypeError):
        mv.load_image(12345)


def test_closed_handles(mv, pneumonia):
    m = mv.Model("cxr-pneumonia", warmup=False)
    m.close()
    with pytest.raises(ValueError, match="Model is closed"):
        m.classify(EXAMPLE_DCM)
    img = mv.load_image(EXAMPLE_DCM)
    img.close()
    with pytest.raises(ValueError, match="Image is closed"):
        pneumonia.classify(img)


def test_model_not_found(mv):
    with pytest.raises(FileNotFoundError) as ei:
        mv.Model("no-such-model")
    check(ei, mv.MedvisionFileNotFoundError, mv.Status.IO, "no-such-model")


def test_bad_manifest_is_model_error(mv, tmp_path):
    pkg = tmp_path / "broken"
    shutil.copytree(ROOT / "models" / "cxr-pneumonia" / "package", pkg)
    manifest = json.loads((pkg / "manifest.json").read_text())
    manifest["sha256"] = "0" * 64
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(mv.ModelError) as ei:
        mv.Model(pkg)
    check(ei, mv.ModelError, mv.Status.MODEL, str(pkg))


def test_missing_device(mv):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(mv.DeviceError) as ei:
        mv.Model("cxr-pneumonia", device="cuda:0")
    check(ei, mv.DeviceError, mv.Status.DEVICE, "cuda")


def test_volume_into_2d_model_is_shape_mismatch(mv, pneumonia):
    vol = mv.from_numpy(np.zeros((1, 4, 32, 32), np.float32))
    with pytest.raises(mv.ShapeMismatchError) as ei:
        pneumonia.explain(vol)
    check(ei, mv.ShapeMismatchError, mv.Status.SHAPE_MISMATCH)


def test_calibrate_and_drift_argument_errors(mv, pneumonia, tmp_path):
    with pytest.raises(mv.InvalidArgumentError, match=r"logits must be \[count > 0, 1\]"):
        mv.calibrate(pneumonia, np.zeros((4, 3), np.float32), [0, 1, 0, 1], tmp_path / "x")
    with pytest.raises(mv.InvalidArgumentError, match="labels must be"):
        mv.calibrate(pneumonia, np.zeros((4, 1), np.float32), [0, 1, 0], tmp_path / "x")
    with pytest.raises(mv.InvalidArgumentError, match="records no calibration-time"):
        with mv.Model("cxr-edema", warmup=False) as uncalibrated:
            uncalibrated.drift_check(np.zeros((8, len(uncalibrated.labels)), np.float32))


def test_exceptions_pickle(mv, tmp_path):
    with pytest.raises(mv.MedvisionError) as ei:
        mv.load_image(tmp_path / "nope.png")
    e = pickle.loads(pickle.dumps(ei.value))
    assert type(e) is mv.MedvisionFileNotFoundError and e.status == 3 and str(e) == str(ei.value)
