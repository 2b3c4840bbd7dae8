"""Images: decoding from paths and bytes, geometry, safe metadata, numpy views without copies."""
import gc
import pathlib

import numpy as np
import pytest

from conftest import EXAMPLE_DCM, png_bytes


def test_version(mv):
    assert mv.__version__ == mv._core.version() == mv._core.HEADER_VERSION
    assert mv.__version__.count(".") == 2


def test_load_path_pathlike_and_bytes_agree(mv):
    a = mv.load_image(str(EXAMPLE_DCM))
    b = mv.load_image(pathlib.Path(EXAMPLE_DCM))
    c = mv.load_image(EXAMPLE_DCM.read_bytes())
    d = mv.load_image(memoryview(bytearray(EXAMPLE_DCM.read_bytes())))
    for other in (b, c, d):
        assert other.shape == a.shape
        np.testing.assert_array_equal(other.array, a.array)
    assert a.format == "DICOM"
    assert a.shape == (1, 1, a.height, a.width)
    assert a.metadata["Modality"] == "CR"
    assert a.meta("Modality") == "CR"
    assert a.meta("PatientName") is None  # PHI is never read, so never returned
    assert "PatientName" not in a.metadata and set(a.metadata) <= set(mv._core.META_KEYS)
    # META_KEYS comes from the library (mv_image_meta_key), not from a copy in the binding.
    keys = mv._core.META_KEYS
    assert keys[0] == "Modality" and "NumberOfFrames" in keys and len(set(keys)) == len(keys)
    assert not any(k.startswith("Patient") for k in keys)


def test_geometry(mv):
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(1, 2, 3, 4)
    direction = np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]], dtype=float)
    img = mv.from_numpy(arr, spacing=(0.5, 0.7, 2.5), origin=(-10, 20.5, 3), direction=direction)
    assert img.shape == (1, 2, 3, 4)
    assert img.spacing == (0.5, 0.7, 2.5)
    assert img.origin == (-10.0, 20.5, 3.0)
    np.testing.assert_array_equal(img.direction, direction)
    assert img.stored_dtype == "int16" and img.format == "pixels"
    np.testing.assert_array_equal(img.array, arr.astype(np.float32))


def test_array_is_a_readonly_view_without_copy(mv, example_image):
    a, b = example_image.array, example_image.array
    assert np.shares_memory(a, b)
    assert np.shares_memory(a, np.asarray(example_image))
    assert a.dtype == np.float32 and a.flags.c_contiguous
    assert not a.flags.writeable and not a.flags.owndata
    with pytest.raises(ValueError):
        a[0, 0, 0, 0] = 1.0


def test_view_outlives_close_and_the_image_object(mv):
    img = mv.load_image(EXAMPLE_DCM)
    view = img.array
    expected = view.copy()
    img.close()
    assert img.closed
    with pytest.raises(ValueError, match="closed"):
        img.array
    del img
    gc.collect()
    np.testing.assert_array_equal(view, expected)  # the capsule keeps the buffer alive


def test_context_manager(mv):
    with mv.load_image(EXAMPLE_DCM) as img:
        assert not img.closed
    assert img.closed
    assert "closed" in repr(img)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                   np.float32, np.float64, np.int64, np.float16, bool])
def test_from_numpy_dtypes(mv, dtype):
    arr = (np.arange(30).reshape(5, 6) % 7).astype(dtype)
    img = mv.from_numpy(arr)
    assert img.shape == (1, 1, 5, 6)
    np.testing.assert_array_equal(img.array[0, 0], arr.astype(np.float32))


def test_from_numpy_follows_strides(mv):
    base = np.arange(400, dtype=np.uint16).reshape(20, 20)
    for view in (base[::2, ::3], base[::-1], base.T, np.asfortranarray(base)):
        img = mv.from_numpy(view)
        np.testing.assert_array_equal(img.array[0, 0], view.astype(np.float32))
    big_endian = base.astype(">u2")
    np.testing.assert_array_equal(mv.from_numpy(big_endian).array[0, 0], base)


def test_from_numpy_rgb_is_planar(mv):
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    img = mv.from_numpy(rgb)
    assert img.shape == (3, 1, 4, 5) and img.photometric == "RGB"
    np.testing.assert_array_equal(img.array[:, 0], rgb.transpose(2, 0, 1))


def test_png_bytes(mv):
    grey = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64)
    img = mv.load_image(png_bytes(grey))
    assert img.format == "PNG" and img.shape == (1, 1, 48, 64)
    np.testing.assert_array_equal(img.array[0, 0], grey)


def test_windows(mv, example_image):
    w = example_image.windows
    assert w and w[0].width > 0 and w[0].function in ("linear", "linear_exact", "sigmoid", "table")
    voi = mv.load_image(EXAMPLE_DCM, apply_voi=0)
    assert 0.0 <= voi.array.min() and voi.array.max() <= 1.0
