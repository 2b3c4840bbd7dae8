"""Conformance of medvision's NIfTI and raster decoding against nibabel and PIL.

Run by CTest (label `conformance`) with MV_DUMP (the mv_dump tool), MEDVISION_DATA and
MV_SOURCE_DIR set. Missing data skips locally and fails where CI=true (tests/support/test_data.hpp
has the same rule).
"""
import glob
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.environ.get("MV_SOURCE_DIR", ""), "scripts"))
import nifti_reference as ref  # noqa: E402

DATA = os.environ.get("MEDVISION_DATA", "")
DUMP = os.environ.get("MV_DUMP", "")
IN_CI = os.environ.get("CI") == "true"

# Files medvision refuses, with the reason and the status it must give. nibabel cannot read the
# first three either (their voxels are in .img files absent from the data set).
EXPECTED_FAILURES = {
    "nifti1.hdr": ("MV_ERR_UNSUPPORTED_FORMAT", "NIfTI-1 .hdr/.img pair header; nifti1.img absent"),
    "nifti2.hdr": ("MV_ERR_UNSUPPORTED_FORMAT", "NIfTI-2 .hdr/.img pair header; nifti2.img absent"),
    "analyze.hdr": ("MV_ERR_UNSUPPORTED_FORMAT", "Analyze 7.5 header, not NIfTI; analyze.img absent"),
    "test.mgz": ("MV_ERR_UNSUPPORTED_FORMAT", "FreeSurfer MGH (gzip), not NIfTI"),
}
NOT_IMAGES = {"COPYING", "README.rst", "PROVENANCE.txt"}


def data_files(pattern):
    files = sorted(glob.glob(os.path.join(DATA, pattern))) if DATA else []
    if not files:
        if IN_CI:
            pytest.fail(f"test data missing in CI: {pattern} under {DATA!r}")
        pytest.skip(f"test data not found: {pattern} (set MEDVISION_DATA)")
    return files


def dump(path, tmp_path):
    assert DUMP, "MV_DUMP is not set (run through ctest)"
    prefix = str(tmp_path / "out")
    subprocess.run([DUMP, path, prefix], check=True)
    with open(prefix + ".json") as f:
        meta = json.load(f)
    pixels = np.load(prefix + ".npy") if meta["status"] == "MV_OK" else None
    return meta, pixels


def assert_pixels(got, want, rtol=1e-5):
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=rtol, atol=rtol * max(1.0, float(np.nanmax(np.abs(want)))
                                                              if want.size else 1.0),
                       equal_nan=True), f"max abs diff {np.nanmax(np.abs(got - want))}"


def assert_geometry(meta, geom, tol=1e-4):
    for key in ("spacing", "origin", "direction"):
        np.testing.assert_allclose(meta[key], geom[key], atol=tol, rtol=tol, err_msg=key)


def nifti_inputs():
    if not DATA:
        return []
    found = glob.glob(os.path.join(DATA, "nifti", "**", "*"), recursive=True)
    cases = sorted(glob.glob(os.path.join(DATA, "brats", "bratsreg2018-flair-t1", "case_*")))
    # The sanitizer build (MV_CONFORMANCE_BRATS_CASES=1) reads one case: the seven are the same
    # kind of file (gzip NIfTI-1, int16/uint8, one pipeline); the Release build reads them all.
    limit = int(os.environ.get("MV_CONFORMANCE_BRATS_CASES", "0"))
    for case in cases[:limit] if limit > 0 else cases:
        found += glob.glob(os.path.join(case, "*.nii.gz"))
    return sorted(f for f in found if os.path.isfile(f) and os.path.basename(f) not in NOT_IMAGES)


@pytest.mark.parametrize("path", nifti_inputs() or ["<no data>"],
                         ids=lambda p: os.path.relpath(p, DATA) if DATA else p)
def test_nifti_matches_nibabel(path, tmp_path):
    if path == "<no data>":
        data_files("nifti/*")
    name = os.path.basename(path)
    meta, pixels = dump(path, tmp_path)
    if name in EXPECTED_FAILURES:
        status, reason = EXPECTED_FAILURES[name]
        assert meta["status"] == status, f"{reason}: {meta}"
        assert path in meta["message"], "the message must name the input"
        return
    assert meta["status"] == "MV_OK", meta["message"]
    want, geom = ref.nifti_reference(path)
    assert_pixels(pixels, want)
    assert_geometry(meta, geom)
    assert meta["format"] == 2  # MV_FORMAT_NIFTI


def test_nifti_counts():
    """Every NIfTI data file is either compared or a listed expected failure."""
    files = nifti_inputs()
    if not files:
        data_files("nifti/*")
    names = {os.path.basename(f) for f in files}
    assert set(EXPECTED_FAILURES) <= names


# ------------------------------------------------------------------------------------------------
# Raster: real images against PIL, synthetic ones made here with PIL.

def raster_inputs():
    if not DATA:
        return []
    out = []
    for pattern, n in (("kermany/NORMAL/*.jpeg", 8), ("kermany/PNEUMONIA/*.jpeg", 8),
                       ("nih14/images/*.png", 12), ("jsrt/images/*.png", 12)):
        out += sorted(glob.glob(os.path.join(DATA, pattern)))[:n]
    return out


@pytest.mark.parametrize("path", raster_inputs() or ["<no data>"],
                         ids=lambda p: os.path.relpath(p, DATA) if DATA else p)
def test_raster_matches_pil(path, tmp_path):
    if path == "<no data>":
        data_files("kermany/*/*.jpeg")
    meta, pixels = dump(path, tmp_path)
    assert meta["status"] == "MV_OK", meta["message"]
    want, _ = ref.raster_reference(path)
    assert pixels.shape == want.shape
    # PIL and OpenCV both decode through the system libjpeg-turbo / libpng: exact.
    assert np.array_equal(pixels, want), f"max abs diff {np.abs(pixels - want).max()}"


def synthetic(tmp_path, name, mode, size=(37, 23), fmt=None, **save):
    from PIL import Image

    w, h = size
    rng = np.random.default_rng(7)
    if mode == "I;16":
        arr = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
        im = Image.fromarray(arr, mode="I;16")
    elif mode == "P":
        im = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8), "RGB")
        im = im.quantize(16)
    else:
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
        arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
        im = Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode)
    path = str(tmp_path / name)
    im.save(path, fmt, **save)
    return path


SYNTHETIC = [
    ("grey8.png", "L", {}, 1, 8),
    ("grey16.png", "I;16", {}, 1, 16),
    ("grey_alpha.png", "LA", {}, 1, 8),
    ("rgb.png", "RGB", {}, 3, 8),
    ("rgba.png", "RGBA", {}, 3, 8),
    ("palette.png", "P", {}, 3, 8),
    ("grey16.tif", "I;16", {}, 1, 16),
    ("rgb.tif", "RGB", {}, 3, 8),
    ("grey.bmp", "L", {}, 1, 8),
    ("rgb.bmp", "RGB", {}, 3, 8),
    ("grey.jpg", "L", {"quality": 95}, 1, 8),
    ("rgb.jpg", "RGB", {"quality": 95}, 3, 8),
]


@pytest.mark.parametrize("name,mode,save,channels,bits", SYNTHETIC, ids=[s[0] for s in SYNTHETIC])
def test_raster_synthetic(tmp_path, name, mode, save, channels, bits):
    path = synthetic(tmp_path, name, mode, **save)
    meta, pixels = dump(path, tmp_path)
    assert meta["status"] == "MV_OK", meta["message"]
    want, _ = ref.raster_reference(path)
    assert pixels.shape == want.shape == (channels, 1, 23, 37)
    assert np.array_equal(pixels, want), f"max abs diff {np.abs(pixels - want).max()}"
    assert meta["bits_stored"] == bits
    assert meta["photometric"] == (2 if channels == 1 else 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path, orientation):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    path = synthetic(tmp_path, f"o{orientation}.jpg", "RGB", size=(40, 24), quality=95,
                     exif=exif.tobytes())
    meta, pixels = dump(path, tmp_path)
    assert meta["status"] == "MV_OK", meta["message"]
    want, _ = ref.raster_reference(path)
    rotated = orientation >= 5
    assert pixels.shape == ((3, 1, 40, 24) if rotated else (3, 1, 24, 40))
    assert np.array_equal(pixels, want)
