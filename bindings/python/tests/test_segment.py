"""Segmentation through Python: label maps and probability maps as views without copies,
region measurements, writers, progress and cancellation, the GIL released; checked against the
ground truth of the public data sets (JSRT lungs and heart, BraTS whole tumour)."""
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import data_path
from test_threads import ticks_during


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def lungs(mv):
    with mv.Model("cxr-lungs") as m:
        yield m


@pytest.fixture(scope="module")
def jsrt(mv):
    return mv.load_image(data_path("jsrt/images/JPCLN001.png"))


def test_lungs_mask_probabilities_and_regions(mv, lungs, jsrt):
    assert lungs.task == "segmentation"
    seg = lungs.segment(jsrt, probabilities=True)
    assert isinstance(seg, mv.Segmentation)
    assert seg._handle.task == lungs.task and seg.to_dict()["task"] == "segmentation"
    assert seg.labels == ("background", "left_lung", "right_lung", "heart")
    assert seg.mask.shape == (1, jsrt.height, jsrt.width) and seg.mask.dtype == np.float32
    assert not seg.mask.flags.writeable and np.shares_memory(seg.mask, seg._handle.mask)
    assert set(np.unique(seg.mask)) <= {0.0, 1.0, 2.0, 3.0}
    p = seg.probabilities
    assert p.shape == (4, 1, jsrt.height, jsrt.width)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-4)
    np.testing.assert_array_equal(p.argmax(axis=0), seg.mask)
    names = [r.name for r in seg.regions]
    assert {"left_lung", "right_lung", "heart", "lungs"} <= set(names)
    lung = seg.region("lungs")
    assert lung.voxels == seg.region("left_lung").voxels + seg.region("right_lung").voxels
    # JSRT's PNGs carry no pixel spacing: the size is a pixel count, the area is not known.
    assert not lung.spacing_known and lung.unit == "pixels" and lung.area_mm2 != lung.area_mm2
    assert lung.volume_ml == 0 and lung.components >= 2
    d = seg.to_dict()
    assert d["task"] == "segmentation" and d["shape"] == [1, jsrt.height, jsrt.width]
    for cls, value in (("left_lung", 1), ("right_lung", 2), ("heart", 3)):
        truth = mv.load_image(data_path(f"jsrt/masks/{cls}/JPCLN001.png")).array[0, 0] > 0
        assert dice(seg.mask[0] == value, truth) > 0.85, cls


def test_run_is_segment_with_the_manifest_settings(mv, lungs, jsrt):
    assert np.array_equal(lungs.run(jsrt).mask, lungs.segment(jsrt).mask)


def test_writers(mv, lungs, jsrt, tmp_path):
    import nibabel as nib
    from PIL import Image as PILImage

    seg = lungs.segment(jsrt)
    seg.write_nifti(tmp_path / "m.nii.gz")
    back = np.asarray(nib.load(str(tmp_path / "m.nii.gz")).dataobj)
    assert np.array_equal(back[:, :, 0].T, seg.mask[0])  # nibabel [i, j, k]
    seg.write_overlay_png(tmp_path / "o.png", jsrt)
    # The picture at the top left, a margin below it (model, notice, legend: test_clinician.py).
    w, h = PILImage.open(tmp_path / "o.png").size
    assert w >= jsrt.width and h > jsrt.height
    with pytest.raises(mv.InvalidArgumentError, match="DICOM"):  # a PNG has no DICOM source
        seg.write_dicom_seg(tmp_path / "s.dcm", jsrt)


def test_progress_and_cancel(mv, lungs, jsrt):
    seen = []
    lungs.segment(jsrt, overlap=0.5, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]
    with pytest.raises(mv.CancelledError) as ei:
        lungs.segment(jsrt, progress=lambda done, total: False)
    assert ei.value.status == mv.Status.CANCELLED

    class Stop(Exception):
        pass

    def boom(done, total):
        raise Stop("from the callback")

    with pytest.raises(Stop):
        lungs.segment(jsrt, progress=boom)


def test_wrong_task(mv, lungs, pneumonia, jsrt):
    with pytest.raises(mv.InvalidArgumentError, match="segment"):
        lungs.classify(jsrt)
    with pytest.raises(mv.InvalidArgumentError):
        pneumonia.segment(jsrt)


def test_segment_releases_the_gil(mv, lungs, jsrt):
    assert ticks_during(lambda: lungs._core.segment(jsrt, overlap=0.5)) > 0


def test_brain_tumour_volume(mv):
    case = data_path("brats/bratsreg2018-flair-t1/case_0")
    flair, t1 = mv.load_image(case / "FLAIR.nii.gz"), mv.load_image(case / "T1.nii.gz")
    stacked = mv.stack([flair, t1])
    assert stacked.shape == (2, *flair.shape[1:])
    # One 96^3 window around the tumour keeps this quick on a CPU; geometry carried over.
    truth = mv.load_image(case / "GT_W.nii.gz").array[0] > 0
    centre = [int(np.mean(ix)) for ix in np.nonzero(truth)]
    box = tuple(slice(max(0, min(c - 48, n - 96)), max(0, min(c - 48, n - 96)) + 96)
                for c, n in zip(centre, truth.shape))
    crop = mv.from_numpy(np.ascontiguousarray(stacked.array[(slice(None),) + box]),
                         spacing=stacked.spacing, direction=stacked.direction)
    with mv.Model("brain-tumour") as model:
        seg = model.segment(crop)
    assert seg.mask.shape == (96, 96, 96)
    tumour = seg.region("whole_tumour")
    assert tumour.volume_ml > 0 and tumour.area_mm2 == 0
    assert dice(seg.mask > 0, truth[box]) > 0.5
    with pytest.raises(mv.ShapeMismatchError):
        mv.stack([flair, mv.from_numpy(np.zeros((8, 8), np.float32))])


def test_explain_segmentation_class_over_its_region(mv, lungs, jsrt, tmp_path):
    import nibabel as nib

    seg = lungs.segment(jsrt)
    e = lungs.explain(jsrt, label="heart")
    assert e.label == "heart" and e.method == "gradcam"
    assert e.shape == (jsrt.height, jsrt.width) and e.slice == 0
    assert not e.heatmap.flags.writeable and np.shares_memory(e.heatmap, e._handle.array)
    assert e.heatmap.max() == pytest.approx(1.0)
    heart = seg.mask[0] == 3
    # The region is the heart as the segmentation finds it (before any post-processing).
    assert abs(e.region_voxels - heart.sum()) <= 0.01 * heart.sum()
    assert 0.9 < e.probability <= 1.0
    # The heat concentrates on the heart: its share of the map's energy is several times its
    # share of the image (measured 0.84 vs 0.09 on this image).
    assert e.heatmap[heart].sum() / e.heatmap.sum() > 4 * heart.mean()
    pp = lungs.explain(jsrt, label="heart", method="gradcam++")
    assert pp.method == "gradcam++" and pp.region_voxels == e.region_voxels
    d = e.to_dict()
    assert d["region_voxels"] == e.region_voxels and d["slice"] == 0 and "heatmap" not in d
    e.write_nifti(tmp_path / "h.nii.gz")
    back = np.asarray(nib.load(str(tmp_path / "h.nii.gz")).dataobj)
    np.testing.assert_array_equal(back[:, :, 0].T, e.heatmap)
    with pytest.raises(mv.InvalidArgumentError, match="choose the one to explain"):
        lungs.explain(jsrt)  # three foreground classes: which one?
    with pytest.raises(mv.InvalidArgumentError, match="Grad-CAM"):
        lungs.explain(jsrt, label="heart", method="cam")


def test_explain_segmentation_3d_keeps_the_volume(mv, tmp_path):
    """A 3D TorchScript package made here: the map is [depth, height, width] on the volume."""
    import hashlib
    import json

    import torch

    class Cube(torch.nn.Module):
        def forward(self, x):
            return self.explain_forward(x)[0]

        @torch.jit.export
        def explain_forward(self, x):
            a = torch.nn.functional.avg_pool3d(x, 2)
            up = torch.nn.functional.interpolate(a, scale_factor=2.0, mode="nearest")
            return (up - 0.5) * 20.0, a

    pkg = tmp_path / "cube"
    pkg.mkdir()
    torch.jit.script(Cube()).save(str(pkg / "model.pt"))
    manifest = {
        "format_version": 1, "name": "cube", "version": "0.0.1", "task": "segmentation",
        "labels": ["cube"], "input": {"channels": 1, "size": [8, 8, 8], "ndim": 3},
        "preprocess": [], "output": {"activation": "sigmoid"},
        "segmentation": {"overlap": 0.5}, "explain": {"activations": "explain_forward"},
        "notice": "Test model. Not for diagnostic use.",
        "sha256": hashlib.sha256((pkg / "model.pt").read_bytes()).hexdigest()}
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    vol = np.zeros((20, 24, 16), np.float32)
    vol[6:12, 8:14, 4:10] = 1.0
    with mv.Model(str(pkg)) as model:
        e = model.explain(mv.from_numpy(vol[None], spacing=(0.7, 0.7, 3.0)))
        assert e.label == "cube" and e.heatmap.shape == (20, 24, 16)
        assert e.region_voxels == 6 * 6 * 6 and 6 <= e.slice < 12
        z, y, x = np.unravel_index(int(e.heatmap.argmax()), e.heatmap.shape)
        assert 6 <= z < 12 and 8 <= y < 14 and 4 <= x < 10
        assert e.heatmap[0:3, 0:3, 12:].max() < 0.02
        seen = []
        model.explain(mv.from_numpy(vol[None]), progress=lambda d, t: seen.append((d, t)))
        assert seen and seen[-1][0] == seen[-1][1] == len(seen)
        with pytest.raises(mv.CancelledError):
            model.explain(mv.from_numpy(vol[None]), progress=lambda d, t: d < 2)

        # From a DICOM series (the cube at 1000 HU): the Secondary Capture shows the hottest
        # slice and references that slice's instance; the patient module is the source's.
        import pydicom
        sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
        from synth_series import write_ct_series

        folder = tmp_path / "ct"
        folder.mkdir()
        stored = [(s * 1000 + 1024).astype(np.int16) for s in vol]
        datasets = write_ct_series(folder, stored, (0.0, 0.0, 0.0), (0.7, 0.7, 3.0),
                                   {"PatientName": "Test^Cube", "PatientID": "T1"})
        series = mv.load_series(sorted(folder.iterdir()))
        e = model.explain(series)  # 1000 HU inside the cube, 0 outside: the same region
        assert e.region_voxels == 6 * 6 * 6 and 6 <= e.slice < 12
        e.write_dicom_sc(tmp_path / "sc.dcm", series)
        sc = pydicom.dcmread(str(tmp_path / "sc.dcm"))
        ref = sc.SourceImageSequence[0].ReferencedSOPInstanceUID
        assert ref == datasets[e.slice].SOPInstanceUID
        assert sc.StudyInstanceUID == datasets[0].StudyInstanceUID and sc.PatientID == "T1"
        # The overlay at the top left, then the burned-in margin (test_clinician.py).
        assert sc.Rows > 24 and sc.Columns >= 16 and "cube" in sc.SeriesDescription
        assert np.array_equal(sc.pixel_array[:24, :16], e.overlay(series))
