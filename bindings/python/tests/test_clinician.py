"""Results a clinician reads correctly (issue 16), through Python and the CLI's human and JSON
output: units only where the pixel spacing is known, and where it came from."""
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from conftest import CLI, EXAMPLE_DCM, ROOT, tool

PACKAGES = ROOT / "models"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool(CLI)), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lungs(mv):
    with mv.Model("cxr-lungs") as m:
        yield m


@pytest.fixture(scope="module")
def imager_dcm(tmp_path_factory) -> Path:
    """The bundled example with an Imager Pixel Spacing (a projection radiograph's detector)."""
    ds = pydicom.dcmread(str(EXAMPLE_DCM))
    assert "PixelSpacing" not in ds and "ImagerPixelSpacing" not in ds
    ds.ImagerPixelSpacing = [0.2, 0.25]  # row, column
    out = tmp_path_factory.mktemp("imager") / "imager.dcm"
    ds.save_as(str(out))
    return out


# ------------------------------------------------------------------------------------- Python


def test_python_no_spacing_is_pixels(mv, lungs):
    image = mv.load_image(EXAMPLE_DCM)  # DICOM without any spacing attribute
    assert image.spacing_source == ""
    seg = lungs.segment(image)
    for r in seg.regions:
        assert not r.spacing_known and r.unit == "pixels"
        assert math.isnan(r.area_mm2) and r.voxels > 0
        assert "spacing unknown" in repr(r) and "mm2" not in repr(r)
        d = r.to_dict()
        assert d["area_mm2"] is None and d["unit"] == "pixels"
    j = seg.to_dict()
    assert j["spacing"]["source"] is None and "spacing unknown" in j["spacing"]["note"]
    json.dumps(j)  # NaN never reaches the JSON


def test_python_spacing_sources(mv, lungs, imager_dcm):
    image = mv.load_image(imager_dcm)
    assert image.spacing_source == "ImagerPixelSpacing"
    assert image.spacing[:2] == (0.25, 0.2)
    seg = lungs.segment(image)
    lung = seg.region("left_lung")
    assert lung.spacing_known and lung.unit == "mm2"
    assert lung.area_mm2 == pytest.approx(lung.voxels * 0.05)
    assert "mm2" in repr(lung)
    assert "at the detector" in seg.to_dict()["spacing"]["note"]

    user = mv.load_image(EXAMPLE_DCM, pixel_spacing=0.5)
    assert user.spacing_source == "user" and user.spacing[:2] == (0.5, 0.5)
    assert lungs.segment(user).region("left_lung").area_mm2 == pytest.approx(
        lung.voxels * 0.25, rel=0.01)
    both = mv.load_image(EXAMPLE_DCM, pixel_spacing=(0.3, 0.4))
    assert both.spacing[:2] == (0.3, 0.4)
    with pytest.raises(mv.InvalidArgumentError, match="pixel_spacing"):
        mv.load_image(EXAMPLE_DCM, pixel_spacing=(-1, 0.5))

    px = np.zeros((8, 8), np.float32)
    assert mv.from_numpy(px).spacing_source == ""
    assert mv.from_numpy(px, spacing=(0.1, 0.1, 1)).spacing_source == "caller"


# ---------------------------------------------------------------------------------------- CLI



def test_cli_no_spacing_human_and_json():
    r = cli("segment", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "spacing unknown: sizes in pixels" in r.stdout
    lines = [ln for ln in r.stdout.splitlines() if "left_lung" in ln]
    assert lines and "pixels" in lines[0] and "mm2" not in lines[0] and "mm LPS" not in lines[0]
    r = cli("segment", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout.splitlines()[0])
    assert j["spacing"]["source"] is None and j["spacing"]["mm"] is None
    for reg in j["regions"]:
        assert reg["area_mm2"] is None and reg["unit"] == "pixels"
        assert reg["spacing_known"] is False and reg["voxels"] > 0
        assert reg["centroid_lps"] is None and len(reg["centroid_index"]) == 3


def test_cli_imager_spacing_and_user_spacing(imager_dcm):
    r = cli("segment", str(imager_dcm), "--model", "cxr-lungs", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "from ImagerPixelSpacing (at the detector" in r.stdout
    assert [ln for ln in r.stdout.splitlines() if "left_lung" in ln and "mm2" in ln]
    r = cli("segment", str(imager_dcm), "--model", "cxr-lungs", "--device", "cpu", "--json")
    j = json.loads(r.stdout.splitlines()[0])
    assert j["spacing"]["source"] == "ImagerPixelSpacing" and j["spacing"]["mm"][:2] == [0.25, 0.2]
    for reg in j["regions"]:
        assert reg["unit"] == "mm2" and reg["area_mm2"] == pytest.approx(reg["voxels"] * 0.05)

    r = cli("segment", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu",
            "--spacing", "0.5,0.4", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout.splitlines()[0])
    assert j["spacing"]["source"] == "user" and j["spacing"]["mm"][:2] == [0.5, 0.4]
    for reg in j["regions"]:
        assert reg["area_mm2"] == pytest.approx(reg["voxels"] * 0.2)
    r = cli("segment", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu",
            "--spacing", "0.5")
    assert r.returncode == 0 and "spacing 0.5 x 0.5 mm from user" in r.stdout
    r = cli("segment", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu",
            "--spacing", "-2")
    assert r.returncode != 0 and "spacing" in r.stderr


# ------------------------------------------------------------ calibrated numbers first (CLI, Python)


def test_python_classification_repr_calibrated_first(mv):
    with mv.Model("cxr-findings") as m:
        c = m.classify(EXAMPLE_DCM)
    shown = [s.calibrated for s in c.ranked]
    assert shown == sorted(shown, reverse=True)  # ranked by the calibrated probability
    assert c.to_dict()["ranked_by"] == "calibrated"
    text = repr(c)
    assert "NOT FOR DIAGNOSTIC USE".lower() in text.lower() or c.notice in text
    for s in c.ranked:
        line = s.describe()
        assert line.startswith(f"{s.label}: ")
        # The calibrated number first, the raw one after it and labelled as a score.
        assert line.index(f"(score ") > line.index("%")
        if s.decision is not None:
            op = s.operating_point
            assert op is not None and f"threshold " in line
            assert ("chosen by Youden's J" in line) == (op["method"] == "youden")
        if s.refer:
            assert "REFER: in the refer band" in line
        assert line in text
    # The JSON keeps every field, and adds the operating point.
    d = c.to_dict()["labels"][0]
    assert {"label", "logit", "probability", "calibrated", "decision", "refer",
            "operating_point"} <= set(d)


def test_cli_classify_human_calibrated_first():
    r = cli("classify", str(EXAMPLE_DCM), "--model", "cxr-findings", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "probability = calibrated (platt, fitted on 127 images)" in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if "(score " in ln]
    assert len(rows) == 13
    shown = [float(ln.split()[1].strip("%<>")) for ln in rows]
    assert shown == sorted(shown, reverse=True)
    for ln in rows:
        assert ("POSITIVE, threshold" in ln) or ("negative, threshold" in ln)
        assert "chosen by Youden's J (sensitivity" in ln
    j = json.loads(cli("classify", str(EXAMPLE_DCM), "--model", "cxr-findings", "--device",
                       "cpu", "--json").stdout.splitlines()[0])
    assert j["ranked_by"] == "calibrated" and j["calibration"]["method"] == "platt"
    for e in j["labels"]:
        assert {"logit", "probability", "calibrated", "decision", "refer"} <= set(e)
        assert e["operating_point"]["threshold"] > 0


def test_cli_decision_names_target_operating_point(tmp_path, mv):
    """A package whose operating point was chosen for a sensitivity says so."""
    import shutil
    pkg = tmp_path / "pkg"
    shutil.copytree(PACKAGES / "cxr-pneumonia" / "package", pkg)
    mj = json.loads((pkg / "manifest.json").read_text())
    op = mj["thresholds"]["Pneumonia"]
    op.update({"method": "sensitivity", "target": 0.8})
    (pkg / "manifest.json").write_text(json.dumps(mj))
    r = cli("classify", str(EXAMPLE_DCM), "--model", str(pkg), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "chosen for sensitivity 0.80" in r.stdout
    with mv.Model(str(pkg)) as m:
        assert "chosen for sensitivity 0.80" in m.classify(EXAMPLE_DCM)["Pneumonia"].describe()



# ------------------------------------------------------------------- overlays and Secondary Captures


def test_heatmap_png_and_sc_margin_legend_picture_unchanged(mv, tmp_path):
    from PIL import Image as PILImage

    image = mv.load_image(EXAMPLE_DCM)
    with mv.Model("cxr-pneumonia") as m:
        e = m.explain(image)
        name, version = m.name, m.version
    picture = e.overlay(image)  # the rendering alone (no margin)
    h, w = picture.shape[:2]
    e.write_png(tmp_path / "cam.png", image)
    png = np.asarray(PILImage.open(tmp_path / "cam.png").convert("RGB"))
    assert png.shape[0] > h and png.shape[1] >= w
    assert np.array_equal(png[:h, :w], picture)  # the picture itself is unchanged
    margin = png[h:]
    assert (margin.max(axis=2) > 200).sum() > 100  # text is drawn there
    # The colour bar: cividis from dark blue to yellow, left to right somewhere in the margin.
    blue_rows = [r for r in margin if ((r[:, 2] > 60) & (r[:, 0] < 40)).any()]
    assert blue_rows

    e.write_dicom_sc(tmp_path / "sc.dcm", image)
    sc = pydicom.dcmread(str(tmp_path / "sc.dcm"))
    px = sc.pixel_array
    assert sc.Rows > h and sc.Columns >= w
    assert np.array_equal(px[:h, :w], picture)
    assert np.array_equal(px, png)  # the same burned-in picture as the PNG
    assert sc.BurnedInAnnotation == "NO"  # the margin names no patient
    assert name in sc.SeriesDescription and version in sc.SeriesDescription


def test_segmentation_overlay_legend(mv, lungs, tmp_path):
    from PIL import Image as PILImage

    image = mv.load_image(EXAMPLE_DCM)
    seg = lungs.segment(image)
    seg.write_overlay_png(tmp_path / "o.png", image)
    png = np.asarray(PILImage.open(tmp_path / "o.png").convert("RGB"))
    h, w = image.height, image.width
    assert png.shape[0] > h and png.shape[1] >= w
    top = png[:h, :w].astype(int)
    # Outside every class the picture is the grey radiograph (r == g == b).
    background = seg.mask[0] == 0
    assert (top[background][:, 0] == top[background][:, 1]).all()
    # Okabe-Ito swatches, one per class, drawn in the margin.
    okabe_ito = [(230, 159, 0), (86, 180, 233), (0, 158, 115)]
    margin = png[h:].reshape(-1, 3)
    for rgb in okabe_ito:
        assert (margin == rgb).all(axis=1).sum() >= 16, rgb
    # ... and the same colours outline the classes in the picture.
    for rgb in okabe_ito:
        assert (top.reshape(-1, 3) == rgb).all(axis=1).any(), rgb


# ------------------------------------------------------------------------- population and input


def dicom_with(tmp_path: Path, name: str, **attrs) -> Path:
    ds = pydicom.dcmread(str(EXAMPLE_DCM))
    for k, v in attrs.items():
        setattr(ds, k, v)
    out = tmp_path / name
    ds.save_as(str(out))
    return out


def test_population_warnings_name_the_attribute_never_the_age(mv, tmp_path):
    adult_pa = dicom_with(tmp_path, "adult.dcm", PatientAge="047Y", ViewPosition="PA",
                          PatientName="Doe^Jane")
    child_ap = dicom_with(tmp_path, "child.dcm", PatientAge="030M", ViewPosition="AP")
    with mv.Model("cxr-pneumonia") as m:
        assert m.manifest["population"]["age_years"] == [1, 5]
        adult = m.classify(adult_pa)
        child = m.classify(child_ap)
        example = m.classify(EXAMPLE_DCM)  # no age: nothing to contradict
    warnings = " | ".join(adult.warnings)
    assert "Patient's Age (0010,1010) outside the model's population (1-5 years)" in warnings
    assert "ViewPosition (0018,5101) PA is not one the model was trained on (AP)" in warnings
    assert "047" not in warnings and "47" not in warnings and "Doe" not in warnings
    assert not any("Patient's Age" in w or "ViewPosition" in w for w in child.warnings)
    assert not any("population" in w for w in example.warnings)
    assert "Patient's Age" in repr(adult)

    r = cli("classify", str(adult_pa), "--model", "cxr-pneumonia", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "warning: Patient's Age (0010,1010) outside the model's population" in r.stdout
    assert "047" not in r.stdout + r.stderr and "Doe" not in r.stdout + r.stderr
    j = json.loads(cli("classify", str(adult_pa), "--model", "cxr-pneumonia", "--device", "cpu",
                       "--json").stdout.splitlines()[0])
    assert any("Patient's Age" in w for w in j["warnings"])
    assert "047" not in json.dumps(j)


def test_population_manifest_is_validated(mv, tmp_path):
    import shutil
    pkg = tmp_path / "pkg"
    shutil.copytree(PACKAGES / "cxr-pneumonia" / "package", pkg)
    mj = json.loads((pkg / "manifest.json").read_text())
    mj["population"]["age_years"] = [5, 1]
    (pkg / "manifest.json").write_text(json.dumps(mj))
    with pytest.raises(mv.ModelError, match="population.age_years"):
        mv.Model(str(pkg))


def test_explanation_save_names_are_deprecated_aliases(mv, tmp_path):
    """One verb per idea: write_*; the save_* names of 0.1 still write the same files and warn."""
    image = mv.load_image(EXAMPLE_DCM)
    with mv.Model("cxr-pneumonia") as m:
        e = m.explain(image)
    e.write_png(tmp_path / "new.png", image)
    with pytest.warns(DeprecationWarning, match="use write_png"):
        e.save_png(tmp_path / "old.png", image)
    assert (tmp_path / "new.png").read_bytes() == (tmp_path / "old.png").read_bytes()
    e.write_nifti(tmp_path / "new.nii")
    with pytest.warns(DeprecationWarning, match="use write_nifti"):
        e.save_nifti(tmp_path / "old.nii")
    assert (tmp_path / "new.nii").read_bytes() == (tmp_path / "old.nii").read_bytes()
    with pytest.warns(DeprecationWarning, match="use write_dicom_sc"):
        e.save_dicom_sc(tmp_path / "old.dcm", image)
    assert pydicom.dcmread(str(tmp_path / "old.dcm")).SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"


def test_cli_classify_refuses_a_segmentation_model():
    # It used to segment the image and then fail with "label index out of range".
    p = cli("classify", str(EXAMPLE_DCM), "--model", "cxr-lungs", "--device", "cpu")
    assert p.returncode == 1, p.stderr
    assert "cxr-lungs is a segmentation model" in p.stderr and "medvision segment" in p.stderr
    assert p.stdout == ""
