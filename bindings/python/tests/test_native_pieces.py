"""Native (uncompressed) DICOM pixel data read in pieces straight from the file (src/io/
dicom_frames.cpp read_native_in_pieces) against pydicom, and against the same bytes decoded
from memory (where DCMTK holds the whole value and the general path runs): multi-frame files,
one frame of many, 8/16/32-bit samples, signed values with a rescale, both little endian
transfer syntaxes, and values larger than one piece (256 KiB)."""
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.pixel_data_handlers.util import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

import medvision


def write(path, pixels, *, bits_stored, signed, syntax, slope=None, intercept=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    frames, rows, cols = pixels.shape
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = pixels.tobytes()
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == ImplicitVRLittleEndian
    ds.save_as(str(path), write_like_original=False)
    return path


def reference(path):
    """pydicom's stored values, with the bits above BitsStored masked off and the sign
    extended (PS3.5 8.1.1; pydicom 2.3 leaves them), then its Modality LUT."""
    ds = pydicom.dcmread(str(path))
    raw = ds.pixel_array.astype(np.int64)
    bits = ds.BitsStored
    raw &= (1 << bits) - 1
    if ds.PixelRepresentation == 1:
        raw = np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)
    arr = apply_modality_lut(raw, ds).astype(np.float32)
    return arr if arr.ndim == 3 else arr[None]


CASES = [  # dtype, bits stored, signed, slope / intercept, frames
    (np.uint16, 12, False, None, 5),
    (np.int16, 16, True, (2.0, -1024.0), 4),
    (np.uint8, 8, False, None, 3),
    (np.uint32, 20, False, (0.5, 10.0), 2),
    (np.int16, 11, True, None, 1),
]


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                         ids=["explicit", "implicit"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{np.dtype(c[0]).name}-{c[1]}bits-{c[4]}f")
def test_native_pieces_equal_pydicom(tmp_path, syntax, case):
    dtype, bits, signed, rescale, frames = case
    rng = np.random.default_rng(bits * 7 + frames)
    info = np.iinfo(dtype)
    # Stored values use every bit of BitsAllocated: the bits above BitsStored are garbage that
    # both readers must mask (and sign-extend for signed data) the same way.
    raw = rng.integers(info.min, info.max, size=(frames, 311, 257), dtype=dtype, endpoint=True)
    path = write(tmp_path / "native.dcm", raw, bits_stored=bits, signed=signed, syntax=syntax,
                 slope=rescale[0] if rescale else None,
                 intercept=rescale[1] if rescale else None)
    assert raw.nbytes > 4096  # over DCM_MaxReadLength: DCMTK leaves it on disk
    ref = reference(path)
    with medvision.load_image(path) as img:
        got = np.asarray(img.array)[0]
    np.testing.assert_array_equal(got, ref)
    with medvision.load_image(path.read_bytes()) as img:  # the general path, from memory
        np.testing.assert_array_equal(np.asarray(img.array)[0], ref)
    for k in {0, frames // 2, frames - 1}:
        with medvision.load_image(path, frame=k) as img:
            np.testing.assert_array_equal(np.asarray(img.array)[0, 0], ref[k])


def test_large_value_in_many_pieces(tmp_path):
    # 6 frames of 512 x 512 x 2 bytes = 3 MiB: twelve pieces, frame boundaries inside pieces.
    raw = (np.arange(6 * 512 * 512, dtype=np.uint32) * 2654435761 % 65536).astype(np.uint16)
    raw = raw.reshape(6, 512, 512)
    path = write(tmp_path / "big.dcm", raw, bits_stored=16, signed=False,
                 syntax=ExplicitVRLittleEndian)
    ref = reference(path)
    with medvision.load_image(path) as img:
        np.testing.assert_array_equal(np.asarray(img.array)[0], ref)
    with medvision.load_image(path, frame=3) as img:
        np.testing.assert_array_equal(np.asarray(img.array)[0, 0], ref[3])


def test_value_read_by_several_threads(tmp_path):
    # 10 frames of 700 x 523 x 2 bytes = 7 MiB: over 4 MiB, so one load reads and converts it
    # in two parts on two threads (where the process may use two CPUs); part boundaries fall
    # inside frames. Signed values with a rescale, compared with pydicom whole and per frame.
    raw = (np.arange(10 * 700 * 523, dtype=np.int64) * 2654435761 % 65536 - 32768)
    raw = raw.astype(np.int16).reshape(10, 700, 523)
    path = write(tmp_path / "large.dcm", raw, bits_stored=16, signed=True,
                 syntax=ExplicitVRLittleEndian, slope=0.5, intercept=-3.0)
    ref = reference(path)
    with medvision.load_image(path) as img:
        np.testing.assert_array_equal(np.asarray(img.array)[0], ref)
    with medvision.load_image(path, frame=7) as img:
        np.testing.assert_array_equal(np.asarray(img.array)[0, 0], ref[7])


def test_truncated_value_is_an_error_naming_the_file(tmp_path):
    raw = np.zeros((2, 300, 300), np.uint16)
    path = write(tmp_path / "cut.dcm", raw, bits_stored=16, signed=False,
                 syntax=ExplicitVRLittleEndian)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    with pytest.raises(medvision.CorruptDataError) as e:
        medvision.load_image(path)
    assert "cut.dcm" in str(e.value)
