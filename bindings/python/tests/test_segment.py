"""Segmentation through Python: label maps and probability maps as views without copies,
region measurements, writers, progress and cancellation, the GIL released; checked against the
ground truth of the public data sets (JSRT lungs and heart, BraTS whole tumour)."""
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
    assert lung.area_mm2 > 0 and lung.volume_ml == 0 and lung.components >= 2
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
    assert PILImage.open(tmp_path / "o.png").size == (jsrt.width, jsrt.height)
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
