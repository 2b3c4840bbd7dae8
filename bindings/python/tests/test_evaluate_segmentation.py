"""Segmentation evaluation (medvision.evaluate(..., masks=...), `medvision evaluate --masks`)
against independent references.

* Synthetic label maps with known answers: Dice of two shifted squares, empty regions (Dice 1 or
  0, HD95 undefined), sizes and volume errors in pixels without a spacing and in mm / ml with one;
  Dice and HD95 of random blobs in 2D and in an anisotropic 3D volume equal numpy / scipy (scipy's
  exact Euclidean distance transform with `sampling`, the definition of models/common/metrics.py);
  the paired comparison's difference equals the mean per-case difference.
* Bad input: a 0/255 mask, a mask on another grid, a classification model, a bad CSV.
* Real data: 10 JSRT validation cases through the bundled cxr-lungs package, as the CLI with two
  models (the package and a copy that keeps only the largest component of each class): the
  per-case Dice and HD95 equal scipy's on the masks medvision.segment gives, evaluation.json equals
  medvision.evaluate on the same inputs, the terminal table and report.html (self-contained)
  show every region. SKIPPED where ../shared/data/jsrt is absent.
"""
import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import CLI, ROOT, data_path, tool
from scipy import ndimage

LUNGS = ROOT / "models" / "cxr-lungs" / "package"
PNEUMONIA = ROOT / "models" / "cxr-pneumonia" / "package"
REGIONS = ["left_lung", "right_lung", "heart", "lungs"]
VALUES = {"left_lung": [1], "right_lung": [2], "heart": [3], "lungs": [1, 2]}


def dice_np(a, b):
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else 2.0 * (a & b).sum() / s


def hd95_scipy(a, b, spacing):
    """models/common/metrics.py: pooled surface distances, 95th percentile; NaN if one is empty."""
    if not a.any() or not b.any():
        return float("nan")
    st = ndimage.generate_binary_structure(a.ndim, 1)
    sa = a ^ ndimage.binary_erosion(a, st, border_value=0)
    sb = b ^ ndimage.binary_erosion(b, st, border_value=0)
    da = ndimage.distance_transform_edt(~sa, sampling=spacing)
    db = ndimage.distance_transform_edt(~sb, sampling=spacing)
    return float(np.percentile(np.concatenate([db[sa], da[sb]]), 95))


@pytest.fixture(scope="module")
def lungs(mv):
    return mv.Model(str(LUNGS), device="cpu")


def image_with_spacing(mv, arr, spacing):
    """A label-map Image with (column, row[, slice]) spacing in mm."""
    a = np.asarray(arr, np.float32)
    sp = tuple(spacing) + (1.0,) * (3 - len(spacing))
    return mv.from_numpy(a[None] if a.ndim == 3 else a, spacing=sp)


def test_known_answers_in_pixels(mv, lungs):
    ref = np.zeros((64, 64), np.uint8)
    ref[10:30, 10:30] = 1                  # left_lung: 400 pixels
    ref[40:50, 40:50] = 3                  # heart: 100 pixels
    pred = np.zeros_like(ref)
    pred[10:30, 13:33] = 1                 # shifted 3 columns: overlap 17 x 20
    pred[40:50, 40:50] = 2                 # the heart's pixels called right_lung
    ev = mv.evaluate(lungs, None, masks=[ref], predictions=[[pred]], bootstrap=50)
    assert ev["task"] == "segmentation" and ev["images"] == 1
    assert ev["units"] == {"spacing_known": False, "distance": "pixels", "volume": "pixels"}
    assert ev["regions"] == REGIONS
    case = ev["cases"][0]["models"][0]
    assert case["left_lung"]["dice"] == pytest.approx(2 * 340 / 800)
    assert case["left_lung"]["hd95"] == pytest.approx(hd95_scipy(ref == 1, pred == 1, (1, 1)))
    assert case["left_lung"]["volume_error"] == 0
    assert case["heart"]["dice"] == 0 and case["heart"]["hd95"] is None
    assert case["heart"]["reference"] == 100 and case["heart"]["prediction"] == 0
    assert case["heart"]["volume_error"] == -100 and case["heart"]["relative_volume_error"] == -1
    assert case["right_lung"]["dice"] == 0 and case["right_lung"]["relative_volume_error"] is None
    # lungs = left + right: 400 + 0 in the reference, 400 + 100 predicted.
    assert case["lungs"]["reference"] == 400 and case["lungs"]["prediction"] == 500
    m = ev["models"][0]["regions"]
    assert m["heart"]["hd95"]["undefined"] == 1 and m["heart"]["hd95"]["mean"] is None
    assert m["heart"]["reference_empty"] == 0 and m["heart"]["prediction_empty"] == 1
    assert ev["note"] == "Not for diagnostic use."


def test_both_empty_is_dice_one(mv, lungs):
    ref = np.zeros((32, 32), np.uint8)
    ref[5:10, 5:10] = 1
    ev = mv.evaluate(lungs, None, masks=[ref], predictions=[[ref.copy()]], bootstrap=20)
    case = ev["cases"][0]["models"][0]
    assert case["left_lung"]["dice"] == 1 and case["left_lung"]["hd95"] == 0
    assert case["heart"]["dice"] == 1 and case["heart"]["hd95"] is None


def blobs(rng, shape, n=3):
    a = np.zeros(shape, bool)
    grid = np.indices(shape)
    for _ in range(n):
        c = [rng.uniform(0.2 * s, 0.8 * s) for s in shape]
        r = rng.uniform(0.1, 0.25) * min(shape)
        a |= sum((g - ci) ** 2 for g, ci in zip(grid, c)) < r * r
    return a


def test_random_blobs_2d_equal_scipy_with_spacing(mv, lungs):
    rng = np.random.default_rng(7)
    refs, preds, expect = [], [], []
    for _ in range(6):
        r = np.zeros((48, 56), np.uint8)
        p = np.zeros_like(r)
        r[blobs(rng, r.shape)] = 1
        p[blobs(rng, r.shape)] = 1
        r[blobs(rng, r.shape, 1)] = 3
        p[blobs(rng, r.shape, 1)] = 3
        refs.append(r)
        preds.append(image_with_spacing(mv, p, (0.5, 2.0)))  # column 0.5 mm, row 2 mm
        expect.append(r), expect.append(p)
    ev = mv.evaluate(lungs, None, masks=refs, predictions=[preds], bootstrap=200, seed=3)
    assert ev["units"] == {"spacing_known": True, "distance": "mm", "volume": "mm2"}
    dices = []
    for i, case in enumerate(ev["cases"]):
        r, p = expect[2 * i], expect[2 * i + 1]
        for region in REGIONS:
            a, b = np.isin(p, VALUES[region]), np.isin(r, VALUES[region])
            got = case["models"][0][region]
            assert got["dice"] == pytest.approx(dice_np(a, b), abs=1e-12)
            want = hd95_scipy(a, b, (2.0, 0.5))  # numpy order: rows, columns
            if np.isnan(want):
                assert got["hd95"] is None
            else:
                assert got["hd95"] == pytest.approx(want, rel=1e-9, abs=1e-9)
            assert got["reference"] == pytest.approx(b.sum() * 1.0)   # 0.5 x 2 = 1 mm2
            assert got["volume_error"] == pytest.approx((a.sum() - b.sum()) * 1.0)
        dices.append(case["models"][0]["left_lung"]["dice"])
    d = ev["models"][0]["regions"]["left_lung"]["dice"]
    assert d["mean"] == pytest.approx(np.mean(dices))
    assert d["median"] == pytest.approx(np.median(dices))
    assert d["lo"] <= d["mean"] <= d["hi"] and d["resamples"] == 200


def test_anisotropic_3d_equals_scipy(mv, lungs):
    rng = np.random.default_rng(11)
    shape = (9, 30, 34)
    r = np.zeros(shape, np.uint8)
    p = np.zeros(shape, np.uint8)
    r[blobs(rng, shape)] = 1
    p[blobs(rng, shape)] = 1
    r[blobs(rng, shape, 1)] = 2
    p[blobs(rng, shape, 1)] = 2
    pred = image_with_spacing(mv, p, (0.7, 0.9, 3.0))     # column, row, slice (mm)
    ev = mv.evaluate(lungs, None, masks=[r], predictions=[[pred]], bootstrap=20)
    assert ev["units"] == {"spacing_known": True, "distance": "mm", "volume": "ml"}
    for region in REGIONS:
        a, b = np.isin(p, VALUES[region]), np.isin(r, VALUES[region])
        got = ev["cases"][0]["models"][0][region]
        assert got["dice"] == pytest.approx(dice_np(a, b), abs=1e-12)
        want = hd95_scipy(a, b, (3.0, 0.9, 0.7))
        assert (got["hd95"] is None) if np.isnan(want) else \
            got["hd95"] == pytest.approx(want, rel=1e-9)
        assert got["reference"] == pytest.approx(b.sum() * 0.7 * 0.9 * 3.0 / 1000)


def test_paired_comparison_difference(mv, lungs):
    rng = np.random.default_rng(5)
    refs, pa, pb = [], [], []
    for _ in range(8):
        r = np.zeros((40, 40), np.uint8)
        r[blobs(rng, r.shape, 2)] = 1
        a = ndimage.binary_dilation(r == 1, iterations=1).astype(np.uint8)
        b = ndimage.binary_dilation(r == 1, iterations=3).astype(np.uint8)
        refs.append(r), pa.append(a), pb.append(b)
    ev = mv.evaluate([lungs, lungs], None, masks=refs, predictions=[pa, pb], bootstrap=300)
    assert len(ev["comparisons"]) == 1
    c = ev["comparisons"][0]["regions"]["left_lung"]["dice"]
    da = [dice_np(a == 1, r == 1) for a, r in zip(pa, refs)]
    db = [dice_np(b == 1, r == 1) for b, r in zip(pb, refs)]
    assert c["difference"] == pytest.approx(np.mean(np.subtract(da, db)))
    assert c["a"] == pytest.approx(np.mean(da)) and c["b"] == pytest.approx(np.mean(db))
    assert c["lo"] > 0 and c["p_value"] < 0.05 and c["cases"] == 8  # a is better on every case


def test_bad_masks(mv, lungs):
    ref = np.zeros((16, 16), np.uint8)
    ref[4:8, 4:8] = 255
    with pytest.raises(mv.InvalidArgumentError, match="case 'c1'.*255.*label index"):
        mv.evaluate(lungs, None, masks=[ref], predictions=[[np.zeros_like(ref)]],
                    case_names=["c1"])
    with pytest.raises(mv.MedvisionError, match="grid"):
        mv.evaluate(lungs, None, masks=[np.zeros((16, 16))], predictions=[[np.zeros((16, 17))]])
    with pytest.raises(mv.InvalidArgumentError, match="classification model"):
        mv.evaluate(mv.Model(str(PNEUMONIA), device="cpu"), None, masks=[ref],
                    predictions=[[ref]])
    with pytest.raises(mv.InvalidArgumentError, match="no pixel spacing but the earlier"):
        mv.evaluate(lungs, None, masks=[ref * 0, ref * 0],
                    predictions=[[image_with_spacing(mv, ref * 0, (1.0, 1.0)), ref * 0]])


def jsrt_cases(n):
    root = data_path("jsrt")
    with open(root / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    # Validation cases of the training split are not known here without models/common; use the
    # non-nodule cases from the end of the list, a spread the model card's tool also scores.
    return root, rows[-n:]


def write_label_maps(root, rows, folder):
    from PIL import Image as PILImage

    out = []
    for row in rows:
        lab = np.zeros((384, 384), np.uint8)
        for value, part in ((1, "left_lung"), (2, "right_lung"), (3, "heart")):
            m = np.asarray(PILImage.open(root / row[f"mask_{part}"])) > 127
            lab[m] = value  # SCR heart and lungs overlap a little: the heart wins
        p = folder / f"{row['case']}.png"
        PILImage.fromarray(lab).save(p)
        out.append((str(root / row["image"]), str(p)))
    return out


def test_jsrt_cli_two_models(mv, lungs, tmp_path):
    cli = tool(CLI)
    root, rows = jsrt_cases(10)
    pairs = write_label_maps(root, rows, tmp_path)
    csv_path = tmp_path / "masks.csv"
    with open(csv_path, "w") as f:
        f.write("image,mask\n")
        for img, msk in pairs:
            f.write(f"{img},{msk}\n")
    lcc = tmp_path / "cxr-lungs-lcc"
    shutil.copytree(LUNGS, lcc)
    man = json.loads((lcc / "manifest.json").read_text())
    man["version"] = man["version"] + "-lcc"
    man["segmentation"]["largest_component"] = not man["segmentation"].get("largest_component")
    (lcc / "manifest.json").write_text(json.dumps(man))
    out = tmp_path / "eval"
    r = subprocess.run([str(cli), "evaluate", "--model", str(LUNGS), "--model", str(lcc),
                        "--masks", str(csv_path), "--out", str(out), "--bootstrap", "200",
                        "--spacing", "0.9333", "--device", "cpu"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for region in REGIONS:
        assert region in r.stdout
    assert "Dice difference" in r.stdout and "Not for diagnostic use." in r.stdout
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["units"] == {"spacing_known": True, "distance": "mm", "volume": "mm2"}
    assert ev["masks_csv"] == str(csv_path)
    # The masks medvision makes, scored by scipy.
    for i, (img, msk) in enumerate(pairs):
        ref = np.asarray(__import__("PIL.Image").Image.open(msk))
        seg = lungs.segment(mv.load_image(img, pixel_spacing=(0.9333, 0.9333)))
        pred = np.asarray(seg.mask)[0]
        assert ev["cases"][i]["case"] == img
        for region in REGIONS:
            a, b = np.isin(pred, VALUES[region]), np.isin(ref, VALUES[region])
            got = ev["cases"][i]["models"][0][region]
            assert got["dice"] == pytest.approx(dice_np(a, b), abs=1e-12)
            assert got["hd95"] == pytest.approx(hd95_scipy(a, b, (0.9333, 0.9333)), rel=1e-6)
    m = ev["models"][0]["regions"]
    assert m["lungs"]["dice"]["mean"] > 0.9 and m["heart"]["dice"]["mean"] > 0.8
    assert len(ev["comparisons"]) == 1
    # The library through Python gives the same evaluation on the same inputs.
    lo = mv.load_image
    py = mv.evaluate([lungs, mv.Model(str(lcc), device="cpu")],
                     [lo(img, pixel_spacing=(0.9333, 0.9333)) for img, _ in pairs],
                     masks=[msk for _, msk in pairs], case_names=[img for img, _ in pairs],
                     bootstrap=200)
    ev.pop("masks_csv")
    assert py == ev
    html = (out / "report.html").read_text()
    assert "<script" not in html and "src=" not in html
    assert "http://" not in html and "https://" not in html
    assert "Not for diagnostic use" in html and "HD95 (mm)" in html
    for region in REGIONS:
        assert f"<h2>{region}</h2>" in html


def test_cli_bad_masks_csv(tmp_path):
    cli = tool(CLI)
    bad = tmp_path / "m.csv"
    bad.write_text("image\nx.png\n")
    r = subprocess.run([str(cli), "evaluate", "--model", str(LUNGS), "--masks", str(bad),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 11 and "m.csv" in r.stderr and "image,mask" in r.stderr
    r = subprocess.run([str(cli), "evaluate", "--model", str(PNEUMONIA), "--masks", str(bad),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 11 and "segmentation models" in r.stderr
