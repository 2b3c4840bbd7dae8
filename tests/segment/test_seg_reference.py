"""Reference label maps from DICOM SEG (mv_label_map_load, issue 18) and `medvision evaluate --masks`
with SEG references and multi-file (channel-stacked) images.

Independent checks: SEG objects built here with pydicom (BINARY bit-packed and FRACTIONAL, frames
shuffled, placed by referenced SOP instance or by Image Position (Patient) only) read back through
the C ABI (ctypes) equal the label maps they were made from, voxel for voxel; SEGs that medvision
itself writes (`medvision segment --dicom-seg`, 3D series and a 2D radiograph) read back equal
`medvision segment --npy`; bad SEGs (another grid, overlapping segments, an unknown label, a frame
off the grid, a missing frame) are refused with the file and the problem named. `medvision
evaluate --masks` gives the same per-case numbers with SEG references as with the equivalent PNG /
NIfTI ones (JSRT with cxr-lungs; a cropped BraTS case with brain-tumour, FLAIR + T1 as two CSV
columns), and its Dice equals numpy's on `medvision segment --stack --npy` to 1e-6.
"""
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(HERE))
from testdata import data_or_skip  # noqa: E402
from test_segment_outputs import COLS, N, ROWS, expected_mask, make_package, write_series  # noqa: E402

CLI = os.environ.get("MV_CLI", str(ROOT / "build" / "examples" / "medvision"))
LIB = os.environ.get("MV_LIB", str(ROOT / "build" / "src" / "libmedvision.so"))
LUNGS = ROOT / "models" / "cxr-lungs" / "package"
BRAIN = ROOT / "models" / "brain-tumour" / "package"
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LUNG_LABELS = ["left_lung", "right_lung", "heart"]


# ---- the C ABI through ctypes ----------------------------------------------------------------

class Options(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("labels", ctypes.POINTER(ctypes.c_char_p)),
                ("values", ctypes.POINTER(ctypes.c_int32)), ("label_count", ctypes.c_size_t),
                ("overlap", ctypes.c_int32), ("fractional_threshold", ctypes.c_double)]


class Lib:
    def __init__(self):
        self.c = ctypes.CDLL(LIB)
        self.c.mv_last_error.restype = ctypes.c_char_p
        self.c.mv_image_data.restype = ctypes.POINTER(ctypes.c_float)
        self.c.mv_image_data.argtypes = [ctypes.c_void_p]
        self.c.mv_image_free.argtypes = [ctypes.c_void_p]
        self.c.mv_image_shape.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]
        self.c.mv_image_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
        self.c.mv_label_map_load.argtypes = [ctypes.c_char_p, ctypes.c_void_p,
                                             ctypes.POINTER(Options), ctypes.c_void_p]

    def load(self, path):
        h = ctypes.c_void_p()
        assert self.c.mv_image_load(str(path).encode(), None, ctypes.byref(h)) == 0, \
            self.c.mv_last_error()
        return h

    def array(self, h):
        shape = (ctypes.c_int64 * 4)()
        self.c.mv_image_shape(h, shape)
        n = int(np.prod(list(shape)))
        return np.ctypeslib.as_array(self.c.mv_image_data(h), shape=(n,)).reshape(
            tuple(shape)).copy()

    def label_map(self, image, seg, labels=None, values=None, overlap=0, threshold=0.5):
        """(status, array or message)"""
        o = Options()
        assert self.c.mv_label_map_options_init(ctypes.byref(o), ctypes.c_size_t(ctypes.sizeof(o))) == 0
        keep = []
        if labels:
            arr = (ctypes.c_char_p * len(labels))(*[l.encode() for l in labels])
            keep.append(arr)
            o.labels, o.label_count = arr, len(labels)
            if values:
                v = (ctypes.c_int32 * len(values))(*values)
                keep.append(v)
                o.values = v
        o.overlap, o.fractional_threshold = overlap, threshold
        out = ctypes.c_void_p()
        status = self.c.mv_label_map_load(str(seg).encode(), image, ctypes.byref(o),
                                          ctypes.byref(out))
        if status != 0:
            return status, self.c.mv_last_error().decode()
        a = self.array(out)
        self.c.mv_image_free(out)
        return 0, a


@pytest.fixture(scope="module")
def lib():
    if not Path(LIB).exists():
        pytest.skip(f"{LIB} not built")
    return Lib()


# ---- SEG objects written with pydicom (independent of medvision) ----------------------------

def code(value, scheme, meaning):
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def make_seg(path, frames, frame_segments, labels, rows, cols, *, positions=None, refs=None,
             orientation=(1, 0, 0, 0, 1, 0), spacing=(1.0, 1.0), thickness=1.0, for_uid=None,
             fractional=False, study_uid=None):
    """A Segmentation IOD: `frames` (uint8 arrays, 0/1 or 0..255) with their segment numbers,
    optional per-frame positions (LPS) and referenced (SOPClassUID, SOPInstanceUID)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SEG_CLASS
    ds.SOPClassUID, ds.SOPInstanceUID = SEG_CLASS, generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SEG", 300, 1
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = for_uid or generate_uid()
    ds.PatientName, ds.PatientID = "Test^Seg", "SEG-TEST"
    ds.SegmentationType = "FRACTIONAL" if fractional else "BINARY"
    if fractional:
        ds.SegmentationFractionalType, ds.MaximumFractionalValue = "PROBABILITY", 255
    ds.SegmentSequence = Sequence()
    for n, label in enumerate(labels, start=1):
        s = Dataset()
        s.SegmentNumber, s.SegmentLabel, s.SegmentAlgorithmType = n, label, "MANUAL"
        s.SegmentedPropertyCategoryCodeSequence = Sequence([code("91723000", "SCT", "Anatomical Structure")])
        s.SegmentedPropertyTypeCodeSequence = Sequence([code("85756007", "SCT", "Tissue")])
        ds.SegmentSequence.append(s)
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = [float(v) for v in orientation]
    pm = Dataset()
    pm.PixelSpacing, pm.SliceThickness = [float(spacing[0]), float(spacing[1])], float(thickness)
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([po]), Sequence([pm])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence()
    for f, seg_no in enumerate(frame_segments):
        item = Dataset()
        si = Dataset()
        si.ReferencedSegmentNumber = seg_no
        item.SegmentIdentificationSequence = Sequence([si])
        if positions is not None:
            pp = Dataset()
            pp.ImagePositionPatient = [float(v) for v in positions[f]]
            item.PlanePositionSequence = Sequence([pp])
        if refs is not None:
            src = Dataset()
            src.ReferencedSOPClassUID, src.ReferencedSOPInstanceUID = refs[f]
            src.PurposeOfReferenceCodeSequence = Sequence([code("121322", "DCM", "Source image for image processing operation")])
            der = Dataset()
            der.SourceImageSequence = Sequence([src])
            der.DerivationCodeSequence = Sequence([code("113076", "DCM", "Segmentation")])
            item.DerivationImageSequence = Sequence([der])
        ds.PerFrameFunctionalGroupsSequence.append(item)
    ds.NumberOfFrames, ds.Rows, ds.Columns = len(frames), rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    stack = np.stack([np.asarray(f, np.uint8) for f in frames])
    if fractional:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = stack.tobytes()
    else:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
        # PS3.5 8.1.1: 1-bit pixels packed LSB first, frames not padded to a byte.
        packed = np.packbits((stack.reshape(-1) > 0).astype(np.uint8), bitorder="little")
        ds.PixelData = packed.tobytes() + (b"\0" if len(packed) % 2 else b"")
    ds.save_as(str(path), write_like_original=False)
    return ds


def seg_of_label_map(path, lab, labels, **kw):
    """One frame per (segment, slice) where present, in shuffled order. `lab` is [D, H, W]."""
    entries = [(v, k) for v in range(1, len(labels) + 1) for k in range(lab.shape[0])
               if (lab[k] == v).any()]
    order = np.random.default_rng(0).permutation(len(entries))
    entries = [entries[i] for i in order]
    pos, refs = kw.pop("positions_of", None), kw.pop("refs_of", None)
    return make_seg(path, [(lab[k] == v).astype(np.uint8) for v, k in entries],
                    [v for v, _ in entries], labels, lab.shape[1], lab.shape[2],
                    positions=[pos(k) for _, k in entries] if pos else None,
                    refs=[refs(k) for _, k in entries] if refs else None, **kw)


# ---- 3D: a synthetic CT series -------------------------------------------------------------

def series_label_map():
    rng = np.random.default_rng(7)
    lab = np.zeros((N, ROWS, COLS), np.uint8)
    lab[1:4, 3:12, 4:15] = 1
    lab[2:6, 13:18, 2:9] = 2
    lab[rng.random(lab.shape) < 0.05] = 0
    return lab


def test_series_seg_by_reference_and_by_position(lib, tmp_path):
    d = tmp_path / "series"
    d.mkdir()
    sources = write_series(d)  # position order; origin (-10, 20, 30), spacing (0.7, 0.8, 2.5)
    image = lib.load(d)
    lab = series_label_map()
    labels = ["Dense Bone", "soft"]
    pos = lambda k: [-10.0, 20.0, 30.0 + 2.5 * k]  # noqa: E731
    ref = lambda k: (sources[k].SOPClassUID, sources[k].SOPInstanceUID)  # noqa: E731
    common = dict(spacing=(0.8, 0.7), thickness=2.5, for_uid=sources[0].FrameOfReferenceUID)
    variants = {"both": dict(positions_of=pos, refs_of=ref), "refs": dict(refs_of=ref),
                "positions": dict(positions_of=pos)}
    for name, kw in variants.items():
        p = tmp_path / f"{name}.dcm"
        seg_of_label_map(p, lab, labels, **kw, **common)
        st, got = lib.label_map(image, p, labels=["dense_bone", "soft"], values=[1, 2])
        assert st == 0, got
        assert got.shape == (1, N, ROWS, COLS) and np.array_equal(got[0], lab), name
        # Without labels, segment numbers are the values.
        st, got = lib.label_map(image, p)
        assert st == 0 and np.array_equal(got[0], lab)
    # Values other than 1..n: label "soft" -> 7.
    st, got = lib.label_map(image, tmp_path / "refs.dcm", labels=["soft", "dense bone"], values=[7, 3])
    assert st == 0 and np.array_equal(got[0], np.select([lab == 1, lab == 2], [3, 7], 0))

    # FRACTIONAL: thresholded at 0.5 of MaximumFractionalValue (>= 128 of 255 here).
    rng = np.random.default_rng(3)
    frac = rng.integers(0, 256, (N, ROWS, COLS)).astype(np.uint8)
    frac[lab == 0] = 0
    entries = [k for k in range(N)]
    make_seg(tmp_path / "frac.dcm", [frac[k] for k in entries], [1] * N, ["dense"], ROWS, COLS,
             refs=[ref(k) for k in entries], fractional=True, **common)
    st, got = lib.label_map(image, tmp_path / "frac.dcm", labels=["dense"])
    assert st == 0 and np.array_equal(got[0], (frac >= 127.5).astype(np.float32))
    st, got = lib.label_map(image, tmp_path / "frac.dcm", labels=["dense"], threshold=0.9)
    assert st == 0 and np.array_equal(got[0], (frac >= 0.9 * 255).astype(np.float32))


def test_nifti_volume_seg_by_position(lib, tmp_path):
    """A NIfTI volume whose frames are 35 pixels (1-bit frames not byte aligned) and whose axes
    are flipped and anisotropic: a SEG placed by Image Position (Patient) from the affine."""
    cols, rows, depth = 7, 5, 4
    affine = np.array([[-0.9, 0, 0, 12.0], [0, 1.1, 0, -30.0], [0, 0, -2.0, 8.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.zeros((cols, rows, depth), np.float32), affine),
             str(tmp_path / "v.nii.gz"))
    rng = np.random.default_rng(11)
    lab = rng.integers(0, 3, (depth, rows, cols)).astype(np.uint8)  # [k, j, i]
    lps = np.diag([-1.0, -1.0, 1.0])
    seg_of_label_map(tmp_path / "v.seg.dcm", lab, ["a", "b"],
                     positions_of=lambda k: lps @ (affine[:3, :3] @ [0, 0, k] + affine[:3, 3]),
                     orientation=list(lps @ [-1.0, 0, 0]) + list(lps @ [0, 1.0, 0]),
                     spacing=(1.1, 0.9), thickness=2.0)
    st, got = lib.label_map(lib.load(tmp_path / "v.nii.gz"), tmp_path / "v.seg.dcm",
                            labels=["a", "b"])
    assert st == 0, got
    assert np.array_equal(got[0], lab)


def overlapping_seg(path, sources):
    """A SEG of the synthetic series whose segments "dense" (a) and "soft" (b) overlap on slice 2
    (rows and columns 5..7); returns the two [N, ROWS, COLS] masks."""
    a, b = np.zeros((N, ROWS, COLS), np.uint8), np.zeros((N, ROWS, COLS), np.uint8)
    a[2, 2:8, 2:8], b[2, 5:10, 5:10] = 1, 1
    ref = (sources[2].SOPClassUID, sources[2].SOPInstanceUID)
    make_seg(path, [a[2], b[2]], [1, 2], ["dense", "soft"], ROWS, COLS, refs=[ref, ref],
             spacing=(0.8, 0.7), thickness=2.5, for_uid=sources[0].FrameOfReferenceUID)
    return a, b


def test_series_seg_refused(lib, tmp_path):
    d = tmp_path / "series"
    d.mkdir()
    sources = write_series(d)
    image = lib.load(d)
    lab = series_label_map()
    pos = lambda k: [-10.0, 20.0, 30.0 + 2.5 * k]  # noqa: E731
    ref = lambda k: (sources[k].SOPClassUID, sources[k].SOPInstanceUID)  # noqa: E731
    common = dict(spacing=(0.8, 0.7), thickness=2.5, for_uid=sources[0].FrameOfReferenceUID)
    INVALID, SHAPE, CORRUPT = 1, 8, 5

    def refused(path, status, *words, **kw):
        st, msg = lib.label_map(image, path, **kw)
        assert st == status, (st, msg)
        assert str(path) in msg
        for w in words:
            assert w in msg, msg
        return msg

    p = tmp_path / "unknown.dcm"
    seg_of_label_map(p, lab, ["dense", "liver"], refs_of=ref, **common)
    refused(p, INVALID, "'liver'", "dense, soft", labels=["dense", "soft"])

    # Overlap: refused by default, resolved by the rules on request.
    p = tmp_path / "overlap.dcm"
    a, b = overlapping_seg(p, sources)
    refused(p, INVALID, "overlaps", "row 5", labels=["dense", "soft"])
    want = np.where(a == 1, 1, np.where(b == 1, 2, 0))
    st, got = lib.label_map(image, p, labels=["dense", "soft"], overlap=1)
    assert st == 0 and np.array_equal(got[0], want)
    st, got = lib.label_map(image, p, labels=["dense", "soft"], overlap=2)
    assert st == 0 and np.array_equal(got[0], np.where(b == 1, 2, np.where(a == 1, 1, 0)))

    p = tmp_path / "grid.dcm"
    make_seg(p, [np.zeros((ROWS, COLS + 1), np.uint8)], [1], ["dense"], ROWS, COLS + 1,
             refs=[ref(0)], **common)
    refused(p, SHAPE, f"frames of {COLS + 1}x{ROWS}")

    p = tmp_path / "oblique.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, positions=[pos(1)],
             orientation=(1, 0, 0, 0, 0, -1), spacing=(0.8, 0.7), for_uid=sources[0].FrameOfReferenceUID)
    refused(p, SHAPE, "ImageOrientationPatient")

    p = tmp_path / "offgrid.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, positions=[[-10.0, 20.0, 30.0 + 2.5 * N]],
             **common)
    refused(p, SHAPE, "frame 1", "not on one of")

    p = tmp_path / "between.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, positions=[[-10.0, 20.0, 31.25]], **common)
    refused(p, SHAPE, "slice 0.50")

    p = tmp_path / "otherfor.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, positions=[pos(1)], spacing=(0.8, 0.7))
    refused(p, SHAPE, "FrameOfReferenceUID")

    p = tmp_path / "spacing.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, refs=[ref(1)], spacing=(0.9, 0.7),
             for_uid=sources[0].FrameOfReferenceUID)
    refused(p, SHAPE, "PixelSpacing")

    p = tmp_path / "nowhere.dcm"
    make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, **common)
    refused(p, INVALID, "frame 1", "ImagePositionPatient")

    # A frame missing: pixel data for two frames, three declared.
    p = tmp_path / "missing.dcm"
    ds = make_seg(p, [lab[1] == 1, lab[2] == 1], [1, 1], ["dense"], ROWS, COLS,
                  refs=[ref(1), ref(2)], **common)
    ds.NumberOfFrames = 3
    ds.save_as(str(p), write_like_original=False)
    refused(p, CORRUPT, "3 frames")

    # Pixel data for fewer frames than declared.
    p = tmp_path / "short.dcm"
    ds = make_seg(p, [lab[k] == 1 for k in (1, 2, 3)], [1, 1, 1], ["dense"], ROWS, COLS,
                  refs=[ref(1), ref(2), ref(3)], **common)
    ds.PixelData = ds.PixelData[:100]
    ds.save_as(str(p), write_like_original=False)
    refused(p, CORRUPT, "PixelData")

    p = tmp_path / "nosegment.dcm"
    make_seg(p, [lab[1] == 1], [4], ["dense"], ROWS, COLS, refs=[ref(1)], **common)
    refused(p, INVALID, "frame 1", "ReferencedSegmentNumber 4")

    p = tmp_path / "labelmap.dcm"
    ds = make_seg(p, [lab[1] == 1], [1], ["dense"], ROWS, COLS, refs=[ref(1)], **common)
    ds.SegmentationType = "LABELMAP"
    ds.save_as(str(p), write_like_original=False)
    refused(p, 4, "LABELMAP")

    # Not on the grid: a plain label map of another size.
    from PIL import Image as PILImage
    PILImage.fromarray(np.zeros((ROWS, COLS + 2), np.uint8)).save(tmp_path / "small.png")
    refused(tmp_path / "small.png", SHAPE, "one channel on the image's grid")


def test_medvision_written_seg_reads_back(lib, tmp_path):
    """`medvision segment --dicom-seg` on a 3D series: the SEG read back equals --npy's mask."""
    d = tmp_path / "series"
    d.mkdir()
    write_series(d)
    pkg = make_package(tmp_path / "pkg")
    out = tmp_path / "out"
    run = subprocess.run([CLI, "segment", str(d), "-m", str(pkg), "--device", "cpu", "--out",
                          str(out), "--dicom-seg", "--npy"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    mask = np.load(out / "series.mask.npy")
    assert np.array_equal(mask, expected_mask())
    st, got = lib.label_map(lib.load(d), out / "series.seg.dcm", labels=["dense", "soft"])
    assert st == 0, got
    assert np.array_equal(got[0], mask)

    # The same through `medvision evaluate`: a perfect score against its own SEG, and the same
    # numbers as against the NIfTI label map `segment --nifti` writes.
    run = subprocess.run([CLI, "segment", str(d), "-m", str(pkg), "--device", "cpu", "--out",
                          str(out), "--nifti"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    csv = tmp_path / "masks.csv"
    csv.write_text(f"image,mask\n{d},out/series.seg.dcm\n{d},out/series.seg.nii.gz\n")
    ev = evaluate(tmp_path, pkg, csv, "--bootstrap", "20")
    c0, c1 = ev["cases"][0]["models"][0], ev["cases"][1]["models"][0]
    assert c0 == c1
    assert all(c0[r]["dice"] == 1.0 for r in ("dense", "soft", "all"))


def evaluate(tmp_path, model, csv, *extra):
    out = tmp_path / "eval"
    r = subprocess.run([CLI, "evaluate", "--model", str(model), "--masks", str(csv), "--out",
                        str(out), "--device", "cpu", *extra], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    assert "Not for diagnostic use." in r.stdout
    return json.loads((out / "evaluation.json").read_text())


def test_radiograph_seg_reads_back(lib, tmp_path):
    """A 2D radiograph (no frame of reference): cxr-lungs' own SEG reads back as its mask."""
    dcm = ROOT / "examples" / "data" / "cxr-example.dcm"
    out = tmp_path / "out"
    run = subprocess.run([CLI, "segment", str(dcm), "-m", str(LUNGS), "--device", "cpu", "--out",
                          str(out), "--dicom-seg", "--npy"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    mask = np.load(out / "cxr-example.mask.npy")
    assert set(np.unique(mask)) >= {0, 1, 2, 3}
    st, got = lib.label_map(lib.load(dcm), out / "cxr-example.seg.dcm", labels=LUNG_LABELS)
    assert st == 0, got
    assert np.array_equal(got[0], mask)


# ---- JSRT: PNG and SEG references give the same evaluation -----------------------------------

def test_jsrt_seg_references_equal_png(lib, tmp_path):
    from PIL import Image as PILImage
    root = data_or_skip("jsrt")
    import csv as csvmod
    with open(root / "labels.csv") as f:
        rows = list(csvmod.DictReader(f))[-3:]
    png_csv, seg_csv = ["image,mask"], ["image,mask"]
    for row in rows:
        masks = {p: np.asarray(PILImage.open(root / row[f"mask_{p}"])) > 127 for p in LUNG_LABELS}
        lab = np.zeros((384, 384), np.uint8)
        for value, part in ((3, "heart"), (1, "left_lung"), (2, "right_lung")):
            lab[masks[part]] = value  # the lungs win where SCR's heart overlaps them
        PILImage.fromarray(lab).save(tmp_path / f"{row['case']}.png")
        # Another tool's spelling of the labels; one frame per segment, no positions.
        seg_of_label_map(tmp_path / f"{row['case']}.seg.dcm", lab[None],
                         ["Left Lung", "Right-Lung", "HEART"], spacing=(0.9333, 0.9333))
        image = str(root / row["image"])
        png_csv.append(f"{image},{row['case']}.png")
        seg_csv.append(f"{image},{row['case']}.seg.dcm")
        st, got = lib.label_map(lib.load(image), tmp_path / f"{row['case']}.seg.dcm",
                                labels=LUNG_LABELS)
        assert st == 0 and np.array_equal(got[0, 0], lab)
        # The raw SCR masks overlap (heart and lungs): refused, or resolved as the label maps are.
        raw = tmp_path / f"{row['case']}.raw.dcm"
        make_seg(raw, [masks[p] for p in LUNG_LABELS], [1, 2, 3], LUNG_LABELS, 384, 384)
        st, msg = lib.label_map(lib.load(image), raw, labels=LUNG_LABELS)
        if (masks["heart"] & (masks["left_lung"] | masks["right_lung"])).any():
            assert st == 1 and "overlaps" in msg and str(raw) in msg
        st, got = lib.label_map(lib.load(image), raw, labels=LUNG_LABELS, overlap=1)
        assert st == 0 and np.array_equal(got[0, 0], lab)
    (tmp_path / "png.csv").write_text("\n".join(png_csv) + "\n")
    (tmp_path / "seg.csv").write_text("\n".join(seg_csv) + "\n")
    a = evaluate(tmp_path / "a", LUNGS, tmp_path / "png.csv", "--spacing", "0.9333",
                 "--bootstrap", "50")
    b = evaluate(tmp_path / "b", LUNGS, tmp_path / "seg.csv", "--spacing", "0.9333",
                 "--bootstrap", "50")
    assert a["cases"] == b["cases"] and a["models"] == b["models"]
    assert a["models"][0]["regions"]["lungs"]["dice"]["mean"] > 0.9

    # An unknown segment label through the CLI: exit 10 + MV_ERR_INVALID_ARGUMENT, file named.
    bad = tmp_path / "bad.seg.dcm"
    seg_of_label_map(bad, np.ones((1, 384, 384), np.uint8), ["liver"])
    (tmp_path / "bad.csv").write_text(f"image,mask\n{root / rows[0]['image']},bad.seg.dcm\n")
    r = subprocess.run([CLI, "evaluate", "--model", str(LUNGS), "--masks", str(tmp_path / "bad.csv"),
                        "--out", str(tmp_path / "o"), "--device", "cpu"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 11 and "bad.seg.dcm" in r.stderr and "'liver'" in r.stderr


# ---- BraTS: FLAIR + T1 as two CSV columns, NIfTI and SEG references -----------------------

def crop(src, dst, box):
    img = nib.load(str(src))
    (i0, i1), (j0, j1), (k0, k1) = box
    data = np.asarray(img.dataobj)[i0:i1, j0:j1, k0:k1]
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ [i0, j0, k0] + img.affine[:3, 3]
    out = nib.Nifti1Image(data, affine)
    out.set_qform(affine, 1)
    out.set_sform(affine, 1)
    nib.save(out, str(dst))
    return out


def test_brats_two_channels_and_seg_reference(tmp_path):
    """One BraTS case cropped around the tumour (bounded time): Dice from `medvision evaluate`
    (CSV columns flair,t1,mask) equals numpy's on `medvision segment --stack --npy`, against the
    GT NIfTI and against a SEG of it placed by Image Position (Patient)."""
    case = data_or_skip("brats/bratsreg2018-flair-t1/case_6")  # a held-out case of the model
    gt_full = np.asarray(nib.load(str(case / "GT_W.nii.gz")).dataobj) > 0.5
    idx = np.argwhere(gt_full)
    centre = (idx.min(0) + idx.max(0)) // 2
    size = np.array([96, 96, 64])
    lo = np.clip(centre - size // 2, 0, np.array(gt_full.shape) - size)
    box = [(int(a), int(a + s)) for a, s in zip(lo, size)]
    for name in ("FLAIR", "T1", "GT_W"):
        crop(case / f"{name}.nii.gz", tmp_path / f"{name}.nii.gz", box)
    gt_img = nib.load(str(tmp_path / "GT_W.nii.gz"))
    gt = np.asarray(gt_img.dataobj).transpose(2, 1, 0) > 0.5  # nibabel [i, j, k] -> [k, j, i]
    assert gt.sum() > 1000

    # The SEG: frame k at the NIfTI affine's voxel (0, 0, k), RAS -> LPS; rows along j.
    aff = gt_img.affine
    lps = np.diag([-1.0, -1.0, 1.0])
    row_dir = lps @ aff[:3, 0] / np.linalg.norm(aff[:3, 0])
    col_dir = lps @ aff[:3, 1] / np.linalg.norm(aff[:3, 1])
    zooms = gt_img.header.get_zooms()
    seg_of_label_map(tmp_path / "GT_W.seg.dcm", gt.astype(np.uint8), ["Whole Tumour"],
                     positions_of=lambda k: lps @ (aff[:3, :3] @ [0, 0, k] + aff[:3, 3]),
                     orientation=list(row_dir) + list(col_dir), spacing=(zooms[1], zooms[0]),
                     thickness=zooms[2])
    (tmp_path / "masks.csv").write_text(
        "flair,t1,mask\nFLAIR.nii.gz,T1.nii.gz,GT_W.nii.gz\nFLAIR.nii.gz,T1.nii.gz,GT_W.seg.dcm\n")
    ev = evaluate(tmp_path, BRAIN, tmp_path / "masks.csv", "--bootstrap", "20")
    assert ev["cases"][0]["case"] == f"{tmp_path}/FLAIR.nii.gz+{tmp_path}/T1.nii.gz"
    nifti, seg = ev["cases"][0]["models"][0], ev["cases"][1]["models"][0]
    assert nifti == seg

    run = subprocess.run([CLI, "segment", str(tmp_path / "FLAIR.nii.gz"), str(tmp_path / "T1.nii.gz"),
                          "--stack", "-m", str(BRAIN), "--device", "cpu", "--npy", "--out",
                          str(tmp_path / "seg")], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    pred = np.load(tmp_path / "seg" / "FLAIR.mask.npy") > 0.5
    want = 2 * (pred & gt).sum() / (pred.sum() + gt.sum())
    got = nifti["whole_tumour"]["dice"]
    print(f"\nbrats case_6 cropped {box}: Dice {got:.6f} (numpy {want:.6f})")
    assert got == pytest.approx(want, abs=1e-6)
    assert got > 0.7


# ---- Python: medvision.load_label_map and medvision.evaluate with SEG paths ------------------

def test_python_binding(tmp_path):
    mv = pytest.importorskip("medvision", reason="Python bindings not built (PYTHONPATH=build/python)")
    d = tmp_path / "series"
    d.mkdir()
    sources = write_series(d)
    lab = series_label_map()
    ref = lambda k: (sources[k].SOPClassUID, sources[k].SOPInstanceUID)  # noqa: E731
    seg_of_label_map(tmp_path / "s.dcm", lab, ["dense", "soft"], refs_of=ref, spacing=(0.8, 0.7),
                     for_uid=sources[0].FrameOfReferenceUID)
    image = mv.load_image(d)
    got = mv.load_label_map(tmp_path / "s.dcm", image, labels=["soft", "dense"], values=[5, 6])
    assert np.array_equal(np.asarray(got.array)[0], np.select([lab == 1, lab == 2], [6, 5], 0))
    with pytest.raises(mv.InvalidArgumentError, match="'soft'.*none of the expected"):
        mv.load_label_map(tmp_path / "s.dcm", image, labels=["dense"])
    pkg = mv.Model(str(make_package(tmp_path / "pkg")), device="cpu")
    got = mv.load_label_map(tmp_path / "s.dcm", image, model=pkg)
    assert np.array_equal(np.asarray(got.array)[0], lab)
    # evaluate() with a SEG path: the same numbers as with the label map as an array.
    a = mv.evaluate(pkg, [image], masks=[tmp_path / "s.dcm"], bootstrap=10)
    b = mv.evaluate(pkg, [image], masks=[lab], bootstrap=10)
    assert a["cases"][0]["models"] == b["cases"][0]["models"]
    # overlaps: the library's names (mv_label_overlap_parse), its message for any other.
    a, b = overlapping_seg(tmp_path / "over.dcm", sources)
    got = mv.load_label_map(tmp_path / "over.dcm", image, labels=["dense", "soft"],
                            overlaps="highest")
    assert np.array_equal(np.asarray(got.array)[0], np.where(b == 1, 2, np.where(a == 1, 1, 0)))
    with pytest.raises(mv.InvalidArgumentError,
                       match="overlap rule must be 'error', 'lowest' or 'highest', not 'top'"):
        mv.load_label_map(tmp_path / "over.dcm", image, labels=["dense", "soft"], overlaps="top")


# ---- medvision evaluate --seg-overlap -------------------------------------------------------

def test_cli_seg_overlap(tmp_path):
    """An overlapping SEG reference: `medvision evaluate --masks` refuses it by default and with
    `--seg-overlap highest` evaluates against the highest-value rule, Dice equal to numpy's on the
    tiny package's mask (expected_mask(), checked against the series in test_segment_outputs)."""
    d = tmp_path / "series"
    d.mkdir()
    sources = write_series(d)
    pkg = make_package(tmp_path / "pkg")
    a, b = overlapping_seg(tmp_path / "over.dcm", sources)
    (tmp_path / "masks.csv").write_text("image,mask\nseries,over.dcm\n")

    def run(*extra):
        return subprocess.run([CLI, "evaluate", "--model", str(pkg), "--masks",
                               str(tmp_path / "masks.csv"), "--out", str(tmp_path / "eval"),
                               "--device", "cpu", "--bootstrap", "10", *extra],
                              capture_output=True, text=True, timeout=300)

    r = run()  # default: error
    assert r.returncode == 11 and "overlaps" in r.stderr and "over.dcm" in r.stderr, r.stderr
    r = run("--seg-overlap", "top")
    assert r.returncode == 11 and "--seg-overlap: error, lowest or highest, not 'top'" in r.stderr

    pred = expected_mask()

    def dice(ref, v):
        return 2 * ((pred == v) & (ref == v)).sum() / ((pred == v).sum() + (ref == v).sum())

    rules = {"lowest": np.where(a == 1, 1, np.where(b == 1, 2, 0)),
             "highest": np.where(b == 1, 2, np.where(a == 1, 1, 0))}
    want = {rule: {"dense": dice(ref, 1), "soft": dice(ref, 2)} for rule, ref in rules.items()}
    assert want["lowest"] != want["highest"]  # the rule shows in the numbers
    r = run("--seg-overlap", "highest")
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["cases"][0]["models"][0]
    for region in ("dense", "soft"):
        assert got[region]["dice"] == pytest.approx(want["highest"][region], abs=1e-6), region
