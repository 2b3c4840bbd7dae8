"""DICOM SR (TID 1500) of results, read back by independent readers: pydicom walks the content
tree and every number must equal the result's JSON; DCMTK reads it (dsrdump, and sr_check:
DSRDocument::read, its validity checks, the template identification); dicom3tools' dciodvfy
reports no errors. Real bundled models on a real chest X-ray DICOM, and a 3D package scripted here
on a synthetic CT series (volume in mL, SEG reference)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BUILD, CLI, data_path, missing, tool

pydicom = pytest.importorskip("pydicom")

# A DX without any pixel spacing (NIH ChestX-ray14 in Google's DICOM form) and a CR with
# PixelSpacing 0.168 mm (SIIM-ACR, JPEG baseline): sizes become pixel counts and mm2.
CXR_DX = ("cxr-dicom/nccid-nhsx/warehouse-loader/tests/test_data/"
          "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm")
CXR_CR = ("cxr-dicom/torchxrayvision/tests/"
          "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
SR_CHECK = BUILD / "tests" / "sr_check"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


# ---- reading the tree --------------------------------------------------------------------------

def code(item):
    return (item.CodeValue if "CodeValue" in item else item.LongCodeValue,
            item.CodingSchemeDesignator)


def concept(item):
    """The item's concept name as (value, scheme); None for items without one (image library
    entries)."""
    if "ConceptNameCodeSequence" not in item:
        return None
    return code(item.ConceptNameCodeSequence[0])


def walk(items):
    for it in items:
        yield it
        yield from walk(it.get("ContentSequence", []))


def groups(ds):
    """{tracking identifier: the group's content items}."""
    out = {}
    for it in walk(ds.ContentSequence):
        if it.ValueType == "CONTAINER" and concept(it) == ("125007", "DCM"):
            kids = list(it.ContentSequence)
            ident = [k.TextValue for k in kids if concept(k) == ("112039", "DCM")]
            assert len(ident) == 1
            out[ident[0]] = kids
    return out


def nums(kids, concept_code):
    """(numeric value, floating point value, unit, method or None, algorithm name, version)."""
    out = []
    for k in kids:
        if k.ValueType == "NUM" and concept(k) == concept_code:
            mv = k.MeasuredValueSequence[0]
            mods = {concept(m): m for m in k.get("ContentSequence", [])}
            method = mods.get(("370129005", "SCT"))
            out.append((float(mv.NumericValue), float(mv.FloatingPointValue),
                        code(mv.MeasurementUnitsCodeSequence[0]),
                        code(method.ConceptCodeSequence[0]) if method else None,
                        mods[("111001", "DCM")].TextValue, mods[("111003", "DCM")].TextValue))
    return out


def evaluation(kids, concept_code):
    found = [k for k in kids if concept(k) == concept_code and k.RelationshipType == "CONTAINS"
             and k.ValueType in ("CODE", "TEXT")]
    if not found:
        return None
    k = found[0]
    return code(k.ConceptCodeSequence[0]) if k.ValueType == "CODE" else k.TextValue


def finding(kids):
    f = [k for k in kids if concept(k) == ("121071", "DCM")]
    return code(f[0].ConceptCodeSequence[0]) if f else None


# ---- independent checks ------------------------------------------------------------------------

def dcmtk_check(path):
    dsrdump = shutil.which("dsrdump")
    if dsrdump is None:
        missing("dsrdump (DCMTK) not installed")
    r = subprocess.run([dsrdump, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Imaging Measurement Report" in r.stdout and "Measurement Group" in r.stdout
    assert "E:" not in r.stderr, r.stderr  # dsrdump's errors (warnings "W:" are listed below)
    r = subprocess.run([str(tool(SR_CHECK)), str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads(r.stdout)
    assert info["valid"] and info["tree_valid"], info
    assert info["template"] == "1500/DCMR" and info["title"] == "126000/DCM"
    assert info["document_type"] == "Comprehensive 3D SR"
    assert (info["preliminary"], info["verification"]) == ("PRELIMINARY", "UNVERIFIED")
    return info


# The dciodvfy warnings these reports may give, each justified; any other warning fails the test.
ALLOWED_WARNINGS = (
    # The local coding scheme of the concepts DICOM has no code for; it is declared in the
    # Coding Scheme Identification Sequence, which dciodvfy does not consult.
    "Unrecognized defined term <99MEDVISION> for value 1 of attribute <Coding Scheme Designator>",
    # The source's own patient and study values, copied verbatim (the test files lack Study Date,
    # Time and ID, and have a single-component PatientName).
    "Missing attribute or value that would be needed to build DICOMDIR",
    "Retired Person Name form",
)


def dciodvfy_check(path):
    exe = shutil.which("dciodvfy")
    if exe is None:
        missing("dciodvfy (dicom3tools) not installed")
    r = subprocess.run([exe, str(path)], capture_output=True, text=True)
    lines = (r.stdout + r.stderr).splitlines()
    errors = [ln for ln in lines if ln.startswith("Error")]
    warnings = sorted({ln for ln in lines if ln.startswith("Warning")})
    print(f"\ndciodvfy {Path(path).name}: {len(errors)} errors; distinct warnings:")
    for w in warnings:
        print(f"  {w}  (x{lines.count(w)})")
    assert not errors, "\n".join(errors)
    unexpected = [w for w in warnings if not any(a in w for a in ALLOWED_WARNINGS)]
    assert not unexpected, "\n".join(unexpected)
    return warnings


def common_checks(path, source_file, model_name, model_version):
    ds = pydicom.dcmread(str(path))
    src = pydicom.dcmread(str(source_file), stop_before_pixels=True)
    assert ds.SOPClassUID == COMPREHENSIVE_3D_SR and ds.Modality == "SR"
    # Same study and patient as the source; a new series.
    assert ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.PatientID == src.get("PatientID", "") and ds.PatientName == src.get("PatientName", "")
    assert (ds.PreliminaryFlag, ds.VerificationFlag) == ("PRELIMINARY", "UNVERIFIED")
    assert "NOT FOR DIAGNOSTIC USE" in ds.SeriesDescription
    eq = ds.ContributingEquipmentSequence[0]
    assert eq.Manufacturer == "medvision" and model_name in eq.ManufacturerModelName
    assert model_version in eq.ManufacturerModelName
    # Observer: a device, medvision running the model.
    items = list(walk(ds.ContentSequence))
    observer_type = [it for it in items if concept(it) == ("121005", "DCM")]
    assert code(observer_type[0].ConceptCodeSequence[0]) == ("121007", "DCM")  # Device
    model_names = [it.TextValue for it in items if concept(it) == ("121015", "DCM")]
    assert model_names == [f"{model_name} {model_version}"]
    # The image library and the evidence reference the source instance.
    refs = [it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for it in items
            if it.ValueType == "IMAGE"]
    assert src.SOPInstanceUID in refs
    evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == src.StudyInstanceUID
    return ds


def check_classification(ds, result):
    """Every number of the result's JSON is in the report, label by label."""
    j = json.loads(json.dumps(result.to_dict()))
    g = groups(ds)
    assert set(g) == {s["label"] for s in j["labels"]}
    conformal = j["conformal"]
    for s in j["labels"]:
        kids = g[s["label"]]
        p = nums(kids, ("122157", "DCM"))
        raw = [x for x in p if x[3] is None]
        cal = [x for x in p if x[3] == ("CALIBRATED", "99MEDVISION")]
        assert len(raw) == 1
        assert raw[0][1] == s["probability"]  # FloatingPointValue: the exact float
        assert raw[0][0] == pytest.approx(s["probability"], rel=1e-9, abs=1e-12)  # DS
        assert raw[0][2] == ("1", "UCUM")
        assert raw[0][4:] == (result.model, result.model_version)
        if s["calibrated"] is None:
            assert not cal
        else:
            assert len(cal) == 1 and cal[0][1] == s["calibrated"]
            assert cal[0][4:] == (result.model, result.model_version)
        fcode = finding(kids)
        ev = evaluation(kids, fcode)
        if s["decision"] is None:
            assert ev is None
        else:
            assert ev == (("52101004", "SCT") if s["decision"] else ("272519000", "SCT"))
        refer = evaluation(kids, ("REFER", "99MEDVISION"))
        assert refer == (("373066001", "SCT") if s["refer"] else ("373067005", "SCT"))
        cset = evaluation(kids, ("CONFORMALSET", "99MEDVISION"))
        if conformal is None:
            assert cset is None
        else:
            want = conformal["labels"][s["label"]]
            assert cset == (", ".join(want) if want else "empty")
            assert float(evaluation(kids, ("CONFORMALALPHA", "99MEDVISION"))) == \
                pytest.approx(conformal["alpha"])
    return g


# ---- classification -----------------------------------------------------------------------------

@pytest.mark.parametrize("model_name", ["cxr-pneumonia", "cxr-findings"])
def test_classification_sr_on_a_real_chest_xray(mv, tmp_path, model_name):
    src = data_path(CXR_DX)
    image = mv.load_image(src)
    with mv.Model(model_name) as model:
        manifest = model.manifest
        result = model.run(image)
    out = tmp_path / "sr.dcm"
    result.write_dicom_sr(out, image)
    ds = common_checks(out, src, result.model, result.model_version)
    g = check_classification(ds, result)
    # Findings are the manifest's SNOMED CT codes (the local code only where it has none).
    for label, kids in g.items():
        c = manifest.get("codes", {}).get(label)
        assert finding(kids) == ((c["value"], "SCT") if c else (label, "99MEDVISION"))
    assert dcmtk_check(out)["groups"] == len(result.scores)
    dciodvfy_check(out)


def test_conformal_sets_reach_the_report(mv, pneumonia, tmp_path):
    """The bundled packages have no conformal calibration: calibrate cxr-pneumonia with conformal
    sets on synthetic validation outputs (a new package, same model and codes) and check that
    the report's sets and alpha equal the result's."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    logits = (np.where(y == 1, 1.5, -1.5) + rng.normal(0, 1.5, 400)).astype(np.float32)
    mv.calibrate(pneumonia, logits.reshape(-1, 1), y, tmp_path / "pkg", conformal_alpha=0.1)
    src = data_path(CXR_DX)
    image = mv.load_image(src)
    with mv.Model(str(tmp_path / "pkg")) as model:
        result = model.run(image)
    assert result.conformal is not None
    result.write_dicom_sr(tmp_path / "sr.dcm", image)
    ds = pydicom.dcmread(str(tmp_path / "sr.dcm"))
    g = check_classification(ds, result)
    assert finding(g["Pneumonia"]) == ("233604007", "SCT")  # codes survive calibration
    dcmtk_check(tmp_path / "sr.dcm")


def test_classification_sr_from_the_cli_equals_its_json(tmp_path):
    src = data_path(CXR_CR)
    r = subprocess.run([str(tool(CLI)), "classify", "-m", "cxr-pneumonia", "--json",
                        "--dicom-sr", str(tmp_path / "sr"), str(src), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["dicom_sr"] != lines[1]["dicom_sr"]  # no overwrite
    for j in lines:
        ds = pydicom.dcmread(j["dicom_sr"])
        s = j["labels"][0]
        kids = groups(ds)[s["label"]]
        p = {x[3]: x[1] for x in nums(kids, ("122157", "DCM"))}
        assert p[None] == s["probability"]
        assert p[("CALIBRATED", "99MEDVISION")] == s["calibrated"]
    # Results of the same image land in the same study, in different series.
    a, b = (pydicom.dcmread(j["dicom_sr"]) for j in lines)
    assert a.StudyInstanceUID == b.StudyInstanceUID
    assert a.SeriesInstanceUID != b.SeriesInstanceUID


# ---- segmentation -------------------------------------------------------------------------------

def region_sizes(ds):
    out = {}
    for label, kids in groups(ds).items():
        for concept_code in (("118565006", "SCT"), ("42798000", "SCT"),
                             ("PIXELCOUNT", "99MEDVISION")):
            n = nums(kids, concept_code)
            if n:
                out[label] = (concept_code, n[0][1], n[0][2], n[0][4:])
    return out


def referenced_segments(ds):
    out = {}
    for label, kids in groups(ds).items():
        for k in kids:
            if k.ValueType == "IMAGE" and concept(k) == ("121191", "DCM"):
                ref = k.ReferencedSOPSequence[0]
                out[label] = (ref.ReferencedSOPInstanceUID, int(ref.ReferencedSegmentNumber))
    return out


@pytest.mark.parametrize("rel,unit", [(CXR_CR, ("mm2", "UCUM")), (CXR_DX, ("{pixels}", "UCUM"))])
def test_segmentation_sr_areas_and_seg_references(mv, tmp_path, rel, unit):
    """cxr-lungs: an area in mm2 where the source gives a pixel spacing, a pixel count where it
    does not (never a false unit); with the SEG, each class references its segment."""
    src = data_path(rel)
    image = mv.load_image(src)
    with mv.Model("cxr-lungs") as model:
        seg = model.segment(image)
    seg.write_dicom_seg(tmp_path / "lungs.seg.dcm", image)
    seg.write_dicom_sr(tmp_path / "lungs.sr.dcm", image, seg_path=tmp_path / "lungs.seg.dcm")
    ds = common_checks(tmp_path / "lungs.sr.dcm", src, seg.model, seg.model_version)
    j = seg.to_dict()
    sizes = region_sizes(ds)
    assert set(sizes) == {r["name"] for r in j["regions"]}
    for r in j["regions"]:
        concept_code, value, got_unit, algorithm = sizes[r["name"]]
        assert got_unit == unit and algorithm == (seg.model, seg.model_version)
        if unit == ("mm2", "UCUM"):
            assert concept_code == ("42798000", "SCT") and value == r["area_mm2"]
        else:
            assert concept_code == ("PIXELCOUNT", "99MEDVISION") and value == r["voxels"]
    # Segments: the SEG's instance and the number of the segment labelled with the class.
    segds = pydicom.dcmread(str(tmp_path / "lungs.seg.dcm"), stop_before_pixels=True)
    numbers = {s.SegmentLabel: int(s.SegmentNumber) for s in segds.SegmentSequence}
    refs = referenced_segments(ds)
    assert refs == {c: (segds.SOPInstanceUID, numbers[c]) for c in numbers}
    assert "lungs" not in refs  # a union of classes has no segment of its own
    # The SEG is listed as other evidence; the findings are the manifest's SEG types.
    other = ds.PertinentOtherEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert other.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == segds.SOPInstanceUID
    assert finding(groups(ds)["heart"]) == ("80891009", "SCT")
    info = dcmtk_check(tmp_path / "lungs.sr.dcm")
    assert info["groups"] == len(j["regions"])
    dciodvfy_check(tmp_path / "lungs.sr.dcm")

    # Without the SEG: the same sizes, no segment references.
    seg.write_dicom_sr(tmp_path / "plain.sr.dcm", image)
    plain = pydicom.dcmread(str(tmp_path / "plain.sr.dcm"))
    assert region_sizes(plain) == sizes and not referenced_segments(plain)
    dcmtk_check(tmp_path / "plain.sr.dcm")
    dciodvfy_check(tmp_path / "plain.sr.dcm")

    # Another image's grid, and a SEG of another result, are refused.
    with pytest.raises(mv.ShapeMismatchError):
        seg.write_dicom_sr(tmp_path / "x.dcm", mv.load_image(data_path(
            "cxr-dicom/fo-dicom/CR-MONO1-10-chest.dcm")))
    with pytest.raises(mv.InvalidArgumentError, match="not a DICOM Segmentation"):
        seg.write_dicom_sr(tmp_path / "x.dcm", image, seg_path=src)


def test_segmentation_sr_of_a_ct_series_has_volumes_in_ml(mv, tmp_path):
    """A 3D package scripted here on a synthetic CT series: the volume in mL equals the result's,
    the SEG it references carries the series' frame of reference, and the CLI writes SEG + SR that references it."""
    import torch

    class Cube(torch.nn.Module):
        def forward(self, x):
            a = torch.nn.functional.avg_pool3d(x, 2)
            return (torch.nn.functional.interpolate(a, scale_factor=2.0) - 0.5) * 20.0

    pkg = tmp_path / "cube"
    pkg.mkdir()
    torch.jit.script(Cube()).save(str(pkg / "model.pt"))
    manifest = {
        "format_version": 1, "name": "cube", "version": "0.0.1", "task": "segmentation",
        "labels": ["cube"], "input": {"channels": 1, "size": [8, 8, 8], "ndim": 3},
        "preprocess": [{"op": "scale", "mode": "fixed", "min": 0, "max": 1000}],
        "output": {"activation": "sigmoid"},
        "codes": {"cube": {"value": "4147007", "scheme": "SCT", "meaning": "Mass"}},
        "notice": "Test model. Not for diagnostic use.",
        "sha256": hashlib.sha256((pkg / "model.pt").read_bytes()).hexdigest()}
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
    from synth_series import write_ct_series

    vol = np.zeros((20, 24, 16), np.float32)
    vol[6:12, 8:14, 4:10] = 1.0
    folder = tmp_path / "ct"
    folder.mkdir()
    datasets = write_ct_series(folder, [(s * 1000 + 1024).astype(np.int16) for s in vol],
                               (0.0, 0.0, 0.0), (0.7, 0.7, 3.0),
                               {"PatientName": "Test^Cube", "PatientID": "T1"})
    series = mv.load_series(sorted(folder.iterdir()))
    with mv.Model(str(pkg)) as model:
        seg = model.segment(series)
    j = seg.to_dict()
    assert j["regions"][0]["voxels"] == 216
    seg.write_dicom_seg(tmp_path / "cube.seg.dcm", series)
    seg.write_dicom_sr(tmp_path / "cube.sr.dcm", series, seg_path=tmp_path / "cube.seg.dcm")
    first = sorted(folder.iterdir())[0]
    ds = common_checks(tmp_path / "cube.sr.dcm", first, "cube", "0.0.1")
    concept_code, value, unit, _ = region_sizes(ds)["cube"]
    assert (concept_code, unit) == (("118565006", "SCT"), ("ml", "UCUM"))
    assert value == j["regions"][0]["volume_ml"] == pytest.approx(216 * 0.7 * 0.7 * 3.0 / 1000)
    assert finding(groups(ds)["cube"]) == ("4147007", "SCT")  # the manifest's "codes"
    # No Frame of Reference module in the SR (the IOD has it only with SCOORD3D content); the
    # SEG it references carries the series' frame of reference.
    assert "FrameOfReferenceUID" not in ds
    segds = pydicom.dcmread(str(tmp_path / "cube.seg.dcm"), stop_before_pixels=True)
    assert segds.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    # The image library lists every slice of the series.
    refs = {it.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for it in walk(ds.ContentSequence) if it.ValueType == "IMAGE"
            and concept(it) != ("121191", "DCM")}
    assert {d.SOPInstanceUID for d in datasets} <= refs
    assert referenced_segments(ds)["cube"][1] == 1
    dcmtk_check(tmp_path / "cube.sr.dcm")
    dciodvfy_check(tmp_path / "cube.sr.dcm")

    # The CLI: --dicom-seg and --dicom-sr together, the SR referencing the SEG written.
    r = subprocess.run([str(tool(CLI)), "segment", "-m", str(pkg), "--json", "-o",
                        str(tmp_path / "out"), "--dicom-seg", "--dicom-sr", str(tmp_path / "sr"),
                        str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout.splitlines()[0])
    sr = pydicom.dcmread(line["outputs"]["dicom_sr"])
    segds = pydicom.dcmread(line["outputs"]["dicom_seg"], stop_before_pixels=True)
    assert referenced_segments(sr)["cube"] == (segds.SOPInstanceUID, 1)
    assert region_sizes(sr)["cube"][1] == line["regions"][0]["volume_ml"]


def test_a_source_not_from_dicom_is_refused(mv, pneumonia, example_image, tmp_path):
    png = mv.from_numpy(np.zeros((64, 64), np.float32))
    with pytest.raises(mv.InvalidArgumentError, match="DICOM"):
        pneumonia.run(png).write_dicom_sr(tmp_path / "x.dcm", png)
    assert not (tmp_path / "x.dcm").exists()
