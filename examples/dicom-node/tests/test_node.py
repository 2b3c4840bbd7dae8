"""medvision-node against a real Orthanc: a study routed from the PACS comes back analysed into
the same study (DICOM SEG, Secondary Capture heat maps, SR), checked with pydicom and against
`medvision classify/segment`; unknown calling AEs refused; the destination down for 20 s, a
kill -9 mid-analysis, a study sent twice, the node's own output sent back to it; no PHI in its
logs or status.

Run: PYTHONPATH=build/python MV_BUILD_DIR=build /usr/bin/python3 -m pytest -q \
         examples/dicom-node/tests
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from servers import Node, Orthanc, free_port, wait_for

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from testdata import data_or_skip  # noqa: E402

BUILD = Path(os.environ.get("MV_BUILD_DIR", ROOT / "build"))
NODE_BIN = BUILD / "examples" / "medvision-node"
CLI_BIN = BUILD / "examples" / "medvision"
CXR = ROOT / "examples" / "data" / "cxr-example.dcm"

SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SR_CLASSES = {"1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.33",
              "1.2.840.10008.5.1.4.1.1.88.22"}
# Sentinels in the patient module: they must never appear in the node's log, status or files
# other than the DICOM objects themselves.
PHI = ["Sentinel^Patient^Zq", "PHI-ID-73519", "19421103"]
# Generous bounds (this machine shares 2 cores); they bound the test, they assert nothing.
RESULT_TIMEOUT = 300


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    for tool in ("/usr/sbin/Orthanc", shutil.which("storescu"), shutil.which("echoscu")):
        if not tool or not Path(tool).exists():
            pytest.fail(f"missing {tool or 'DCMTK storescu/echoscu'} (scripts/setup.sh deps)")
    if not NODE_BIN.exists():
        pytest.fail(f"{NODE_BIN} not built (cmake --build build)")
    tmp = tmp_path_factory.mktemp("dicom-node")
    (tmp / "orthanc").mkdir()
    (tmp / "node").mkdir()
    node_port = free_port()
    orthanc = Orthanc(tmp / "orthanc", Node.AET, node_port)
    orthanc.start()
    node = Node(NODE_BIN, tmp / "node", node_port,
                {"ae_title": Orthanc.AET, "host": "127.0.0.1", "port": orthanc.dicom_port,
                 "retry_initial_seconds": 1, "retry_max_seconds": 3, "give_up_seconds": 900})
    node.start()
    yield {"orthanc": orthanc, "node": node, "tmp": tmp}
    node.stop()
    orthanc.stop()
    print("---- node log ----\n" + node.log()[-6000:])


def new_study(src: Path, dest: Path, **tags):
    """A copy of `src` in a new study (new Study/Series/SOP UIDs) with the PHI sentinels."""
    ds = pydicom.dcmread(src)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.save_as(dest)
    return ds


def storescu(orthanc, files, aet="TESTSCU"):
    r = subprocess.run(["storescu", "-aet", aet, "-aec", orthanc.AET, "127.0.0.1",
                        str(orthanc.dicom_port), *map(str, files)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, f"storescu of {len(files)} file(s) failed:\n{r.stderr[-2000:]}"


def results(orthanc, study_uid):
    """The study's instances in Orthanc that the node wrote, read back with pydicom."""
    out = []
    for iid, _, _ in orthanc.instances(study_uid):
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(orthanc.file(iid)))
        if str(ds.get("Manufacturer", "")) == "medvision":
            out.append(ds)
    return out


def by_class(objs):
    out = {"seg": [], "sc": [], "sr": [], "other": []}
    for ds in objs:
        uid = str(ds.SOPClassUID)
        kind = ("seg" if uid == SEG_CLASS else "sc" if uid == SC_CLASS else
                "sr" if uid in SR_CLASSES else "other")
        out[kind].append(ds)
    return out


def wait_results(env, study_uid, want):
    """Waits until Orthanc holds at least want = {"seg": n, "sc": n, "sr": n} node results."""
    node, orthanc = env["node"], env["orthanc"]

    def ready():
        failed = [j for j in node.jobs() if j["study_uid"] == study_uid and not j["ok"]]
        assert not failed, f"the node's job failed: {failed}"
        got = by_class(results(orthanc, study_uid))
        return got if all(len(got.get(k, [])) >= n for k, n in want.items()) else None

    try:
        return wait_for(ready, RESULT_TIMEOUT, f"results {want} of study {study_uid}", 1.0)
    except AssertionError as e:
        raise AssertionError(f"{e}\nnode status:\n{node.status()}\nnode log:\n"
                             f"{node.log()[-4000:]}") from None


def cli_json(*args):
    out = subprocess.run([str(CLI_BIN), *args, "--json"], capture_output=True, text=True,
                         check=True, timeout=300).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def seg_frames(seg):
    """{segment label: [(frame array, ImagePositionPatient)]} of a SEG."""
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    labels = {s.SegmentNumber: str(s.SegmentLabel) for s in seg.SegmentSequence}
    out = {}
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = item.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        pos = None
        if "PlanePositionSequence" in item:
            pos = [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient]
        out.setdefault(labels[number], []).append((pixels[f], pos))
    return out


def assert_no_phi(node):
    text = node.log() + node.status()
    jobs = node.data_dir / "jobs.jsonl"
    if jobs.exists():
        text += jobs.read_text()
    for p in (node.data_dir / "studies").glob("*/state.json"):
        text += p.read_text()
    for value in PHI:
        assert value not in text, f"PHI value {value!r} in the node's log, status or state"


def test_config_unknown_key_is_refused_with_its_name(tmp_path):
    cfg = tmp_path / "node.json"
    cfg.write_text(json.dumps({"data_dir": "d", "destination": {"ae_title": "X", "host": "h",
                                                                  "port": 1, "retrys": 3}}))
    r = subprocess.run([str(NODE_BIN), "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "destination.retrys: unknown key" in r.stderr and str(cfg) in r.stderr


def test_unknown_calling_ae_is_refused(env):
    node = env["node"]
    ok = subprocess.run(["echoscu", "-aet", Orthanc.AET, "-aec", Node.AET, "127.0.0.1",
                         str(node.port)], capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(["echoscu", "-aet", "INTRUDER", "-aec", Node.AET, "127.0.0.1",
                          str(node.port)], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert "Calling AE Title Not Recognized" in bad.stderr + bad.stdout
    store = subprocess.run(["storescu", "-aet", "INTRUDER", "-aec", Node.AET, "127.0.0.1",
                            str(node.port), str(CXR)], capture_output=True, text=True,
                           timeout=60)
    assert store.returncode != 0
    assert not any((node.data_dir / "studies").glob("*/in/*.dcm")), "a refused AE stored data"
    assert "'INTRUDER' refused" in node.log()


@pytest.fixture(scope="module")
def cxr_study(env):
    """The chest X-ray sent into Orthanc with storescu, routed to the node, results back."""
    orthanc, node = env["orthanc"], env["node"]
    src = env["tmp"] / "cxr.dcm"
    ds = new_study(CXR, src)
    storescu(orthanc, [src])
    orthanc.send_to_node(ds.StudyInstanceUID)
    got = wait_results(env, ds.StudyInstanceUID, {"seg": 1, "sc": 1, "sr": 2})
    return ds, src, got


def test_cxr_results_come_back_into_the_same_study(env, cxr_study):
    ds, src, got = cxr_study
    for obj in got["seg"] + got["sc"]:
        assert obj.StudyInstanceUID == ds.StudyInstanceUID
        assert obj.SeriesInstanceUID != ds.SeriesInstanceUID
        assert "not for diagnostic use" in str(obj.ImageComments).lower()
        assert str(obj.SeriesDescription).startswith(("cxr-lungs", "cxr-pneumonia"))
        assert str(obj.PatientID) == PHI[1]  # the patient module is copied, not invented
    seg = got["seg"][0]
    refs = [i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence
            for i in s.ReferencedInstanceSequence]
    assert refs == [ds.SOPInstanceUID]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == ds.SeriesInstanceUID
    # The lungs: the SEG's frames equal `medvision segment` on the same file.
    frames = seg_frames(seg)
    assert {"left_lung", "right_lung"} <= set(frames), frames.keys()
    out = env["tmp"] / "cli-seg"
    cli_json("segment", str(src), "--model", "cxr-lungs", "--npy", "--out", str(out),
             "--threads", "2")
    mask = np.load(out / "cxr.mask.npy")[0]
    classes = ["background", "left_lung", "right_lung", "heart"]
    for label, [(frame, _)] in frames.items():
        expected = mask == classes.index(label)
        assert frame.shape == expected.shape
        assert np.array_equal(frame.astype(bool), expected), label
        if label.endswith("lung"):
            assert expected.sum() > 1000, label
    # The heat map (the default "positive": cxr-pneumonia's decision on this image is positive):
    # an RGB Secondary Capture of the source's width, referencing it: the picture on the
    # source's grid, then a margin below it (model, notice, colour bar; docs/explain.md).
    sc = got["sc"][0]
    rows, cols, planes = sc.pixel_array.shape
    assert (cols, planes) == (ds.Columns, 3) and rows > ds.Rows
    src_refs = [i.ReferencedSOPInstanceUID for i in sc.SourceImageSequence]
    assert src_refs == [ds.SOPInstanceUID]


def sr_measurements(sr):
    """[(tracking identifier, concept meaning, unit code, value, referenced SOP UIDs)] of every
    NUM in the SR's measurement groups."""
    out = []

    def meaning(item):
        return str(item.ConceptNameCodeSequence[0].CodeMeaning)

    def walk(items, label, refs):
        group = [it for it in items]
        for it in group:
            if it.ValueType == "TEXT" and meaning(it) == "Tracking Identifier":
                label = str(it.TextValue)
            if it.ValueType == "IMAGE" and "ReferencedSOPSequence" in it:
                refs = refs + [str(r.ReferencedSOPInstanceUID) for r in it.ReferencedSOPSequence]
        for it in group:
            if it.ValueType == "NUM":
                mv = it.MeasuredValueSequence[0]
                out.append((label, meaning(it), str(mv.MeasurementUnitsCodeSequence[0].CodeValue),
                            float(mv.NumericValue), refs))
            if "ContentSequence" in it:
                walk(it.ContentSequence, label, refs)

    walk(sr.ContentSequence, None, [])
    return out


def sr_of(srs, model):
    found = [sr for sr in srs if str(sr.ManufacturerModelName).startswith(model)]
    assert len(found) == 1, [str(sr.ManufacturerModelName) for sr in srs]
    return found[0]


def test_cxr_sr_probabilities_equal_the_cli(env, cxr_study):
    ds, src, got = cxr_study
    sr = sr_of(got["sr"], "cxr-pneumonia")
    assert sr.StudyInstanceUID == ds.StudyInstanceUID
    assert sr.VerificationFlag == "UNVERIFIED"
    assert "NOT FOR DIAGNOSTIC USE" in str(sr.SeriesDescription).upper()
    evidence = [i.ReferencedSOPInstanceUID
                for s in sr.CurrentRequestedProcedureEvidenceSequence
                for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence]
    assert ds.SOPInstanceUID in evidence
    expected = cli_json("classify", str(src), "--model", "cxr-pneumonia", "--threads", "2")[0]
    numbers = sr_measurements(sr)
    for label in expected["labels"]:
        values = [v for (lab, _, unit, v, _) in numbers if lab == label["label"] and unit == "1"]
        wanted = [label["probability"]] + ([label["calibrated"]] if label["calibrated"] else [])
        assert len(values) == len(wanted), (label, numbers)
        for w in wanted:
            assert any(abs(v - w) < 1e-9 for v in values), (label, values)


def test_cxr_lungs_sr_references_the_seg_and_its_areas(env, cxr_study):
    ds, src, got = cxr_study
    sr = sr_of(got["sr"], "cxr-lungs")
    seg = got["seg"][0]
    frames = seg_frames(seg)
    pixel_mm2 = float(np.prod([float(v) for v in ds.PixelSpacing])) if "PixelSpacing" in ds \
        else None
    by_label = {lab: (meaning, unit, v, refs) for (lab, meaning, unit, v, refs)
                in sr_measurements(sr)}
    for label in ("left_lung", "right_lung"):
        meaning, unit, value, refs = by_label[label]
        assert seg.SOPInstanceUID in refs, f"{label}: the SR does not reference the SEG"
        count = int(frames[label][0][0].astype(bool).sum())
        if pixel_mm2 is None:
            assert unit == "{pixels}" and value == count, (label, unit, value, count)
        else:
            assert unit == "mm2" and abs(value - count * pixel_mm2) < 1e-6 * value


def test_same_study_twice_and_own_output_are_not_analysed_again(env, cxr_study):
    ds, _, _ = cxr_study
    node, orthanc = env["node"], env["orthanc"]
    jobs_before = [j for j in node.jobs() if j["study_uid"] == ds.StudyInstanceUID]
    count_before = len(orthanc.instances(ds.StudyInstanceUID))
    received_before = node.study_state(ds.StudyInstanceUID)["last_received"]
    # The whole study again: the source and the node's own SEG and SC heat maps.
    orthanc.send_to_node(ds.StudyInstanceUID)
    wait_for(lambda: node.study_state(ds.StudyInstanceUID)["last_received"] > received_before,
             60, "the node to receive the study again")
    time.sleep(2 + 6)  # idle_seconds, then time for an analysis that must not happen
    state = node.study_state(ds.StudyInstanceUID)
    assert state["state"] == "done", state
    assert state["analyses"] == 1
    assert [j for j in node.jobs() if j["study_uid"] == ds.StudyInstanceUID] == jobs_before
    assert len(orthanc.instances(ds.StudyInstanceUID)) == count_before
    assert "is a medvision result; not analysed" in node.log()
    status = node.status()
    assert f"done  study {ds.StudyInstanceUID}" in status, status
    assert "cxr-lungs" in status and "cxr-pneumonia" in status, status
    assert_no_phi(node)


def test_a_bad_file_fails_only_its_study(env):
    """A CR whose pixel data is cut short: the job fails with the file and the problem named,
    `status` shows it, nothing is sent, and the node goes on (the tests below use it)."""
    orthanc, node = env["orthanc"], env["node"]
    src = env["tmp"] / "cxr-bad.dcm"
    ds = new_study(CXR, src)
    ds.PixelData = ds.PixelData[:1000]
    ds.save_as(src)
    storescu(orthanc, [src])
    orthanc.send_to_node(ds.StudyInstanceUID)
    failed = wait_for(lambda: [j for j in node.jobs()
                               if j["study_uid"] == ds.StudyInstanceUID and not j["ok"]],
                      RESULT_TIMEOUT, "the failed job of the bad study")
    assert {j["model"] for j in failed} == {"cxr-pneumonia", "cxr-lungs"}
    for j in failed:
        assert ds.SOPInstanceUID in j["error"] and j["error"].startswith("MV_ERR_"), j
    wait_for(lambda: node.study_state(ds.StudyInstanceUID)["state"] == "done", 60,
             "the bad study to be done")
    assert node.study_state(ds.StudyInstanceUID)["outputs"] == []
    assert "FAILED  cxr-" in node.status()
    assert not results(orthanc, ds.StudyInstanceUID)


def test_results_arrive_after_the_destination_comes_back(env):
    orthanc, node = env["orthanc"], env["node"]
    src = env["tmp"] / "cxr-down.dcm"
    ds = new_study(CXR, src)
    storescu(orthanc, [src])
    orthanc.send_to_node(ds.StudyInstanceUID)
    orthanc.stop()
    try:
        stopped = time.monotonic()
        failed = f"study {ds.StudyInstanceUID}: sending failed"
        wait_for(lambda: failed in node.log(), RESULT_TIMEOUT,
                 "the node to fail sending to the stopped destination")
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        assert (node.study_state(ds.StudyInstanceUID) or {}).get("state") == "sending"
    finally:
        orthanc.start()  # the later tests need it, whatever happened here
    got = wait_results(env, ds.StudyInstanceUID, {"seg": 1, "sc": 1, "sr": 2})
    assert len(got["seg"]) == 1 and got["seg"][0].StudyInstanceUID == ds.StudyInstanceUID


def test_results_arrive_after_kill_9_mid_analysis(env):
    orthanc, node = env["orthanc"], env["node"]
    src = env["tmp"] / "cxr-kill.dcm"
    ds = new_study(CXR, src)
    storescu(orthanc, [src])
    orthanc.send_to_node(ds.StudyInstanceUID)
    wait_for(lambda: (node.study_state(ds.StudyInstanceUID) or {}).get("state") == "analysing",
             60, "the node to start analysing", interval=0.05)
    node.kill9()
    try:
        assert not results(orthanc, ds.StudyInstanceUID)
    finally:
        node.start()
    got = wait_results(env, ds.StudyInstanceUID, {"seg": 1, "sc": 1, "sr": 2})
    time.sleep(3)  # a duplicate from the interrupted run would show up by now
    got = by_class(results(orthanc, ds.StudyInstanceUID))
    assert len(got["seg"]) == 1, "the interrupted analysis left a duplicate SEG"
    assert "1 to analyse" in node.log()  # the restarted node found the study pending


def brats_series(case: Path, out: Path, crop=96):
    """FLAIR and T1 series (one MR file per slice, same study and frame of reference) of a
    `crop`^3 block around the tumour of a BraTS case; returns (study uid, folders, GT block,
    the LPS geometry)."""
    import nibabel as nib
    gt_img = nib.load(str(case / "GT_W.nii.gz"))
    gt = np.asarray(gt_img.dataobj) > 0
    centre = np.round(np.argwhere(gt).mean(axis=0)).astype(int)
    lo = [int(np.clip(c - crop // 2, 0, s - crop)) for c, s in zip(centre, gt.shape)]
    block = tuple(slice(a, a + crop) for a in lo)
    affine = gt_img.affine.copy()
    affine[:3, 3] = affine[:3, :3] @ np.array(lo) + affine[:3, 3]
    lps = np.diag([-1.0, -1.0, 1.0]) @ affine[:3]  # RAS -> LPS
    study, frame = generate_uid(), generate_uid()
    folders = {}
    for number, name in enumerate(["FLAIR", "T1"], start=1):
        vol = np.asarray(nib.load(str(case / f"{name}.nii.gz")).dataobj)[block]
        vol = np.clip(np.round(vol), 0, 32767).astype(np.int16)
        folder = out / name
        folder.mkdir(parents=True)
        series = generate_uid()
        col_dir, row_dir = lps[:, 0], lps[:, 1]
        spacing = [float(np.linalg.norm(col_dir)), float(np.linalg.norm(row_dir)),
                   float(np.linalg.norm(lps[:, 2]))]
        for k in range(vol.shape[2]):
            ds = pydicom.Dataset()
            ds.file_meta = pydicom.dataset.FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
            ds.SOPClassUID = pydicom.uid.MRImageStorage
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI
            ds.PatientSex = "O"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
                study, series, frame)
            ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240102", "1015", "1", ""
            ds.ReferringPhysicianName = ""
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", number, k + 1
            ds.SeriesDescription = f"BraTS {name} (synthetic study)"
            ds.BodyPartExamined = "BRAIN"
            ds.ImageOrientationPatient = [float(v) for v in
                                          list(col_dir / spacing[0]) + list(row_dir / spacing[1])]
            ds.ImagePositionPatient = [float(v) for v in lps @ np.array([0, 0, k, 1.0])]
            ds.PixelSpacing = [spacing[1], spacing[0]]
            ds.SliceThickness = spacing[2]
            # pixel (row r, column c) = voxel (i=c, j=r, k)
            pixels = np.ascontiguousarray(vol[:, :, k].T)
            ds.Rows, ds.Columns = pixels.shape
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.PixelData = pixels.tobytes()
            ds.save_as(folder / f"{k:03d}.dcm", write_like_original=False)
        folders[name] = folder
    return study, folders, gt[block], lps


def test_brain_mr_flair_t1_gives_a_seg_of_the_tumour(env):
    case = data_or_skip("brats/bratsreg2018-flair-t1/case_0")
    orthanc, node = env["orthanc"], env["node"]
    study, folders, gt, lps = brats_series(case, env["tmp"] / "brats")
    storescu(orthanc, sorted(folders["FLAIR"].glob("*.dcm")) + sorted(folders["T1"].glob("*.dcm")))
    orthanc.send_to_node(study)
    t0 = time.monotonic()
    got = wait_results(env, study, {"seg": 1, "sr": 1})
    print(f"brain MR 96^3 FLAIR+T1: results in Orthanc {time.monotonic() - t0:.0f} s after the "
          "send (idle_seconds 2 included)")
    seg = got["seg"][0]
    assert seg.StudyInstanceUID == study
    refs = {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence}
    flair_series = pydicom.dcmread(next(folders["FLAIR"].glob("*.dcm"))).SeriesInstanceUID
    assert flair_series in refs
    frames = seg_frames(seg)
    assert list(frames) == ["whole_tumour"]
    # Frames back onto the crop by their position: slice k is at lps @ (0, 0, k).
    mask = np.zeros(gt.shape, bool)
    z0, dz = lps[2, 3], lps[2, 2]
    for frame, pos in frames["whole_tumour"]:
        k = int(round((pos[2] - z0) / dz))
        mask[:, :, k] = frame.T.astype(bool)
    dice = 2 * np.logical_and(mask, gt).sum() / (mask.sum() + gt.sum())
    print(f"whole-tumour Dice {dice:.3f} against BraTS GT_W (96^3 block)")
    assert dice > 0.6, f"whole-tumour Dice {dice:.3f} against BraTS GT_W"
    # The SR: the tumour volume of the SEG's segment, in ml.
    sr = sr_of(got["sr"], "brain-tumour")
    assert sr.StudyInstanceUID == study
    numbers = sr_measurements(sr)
    volumes = [(v, refs) for (lab, _, unit, v, refs) in numbers
               if lab == "whole_tumour" and unit == "ml"]
    assert volumes, numbers
    voxel_ml = abs(np.linalg.det(lps[:, :3])) / 1000.0
    for value, refs in volumes:
        assert seg.SOPInstanceUID in refs
        assert abs(value - mask.sum() * voxel_ml) <= 1e-6 * value, (value, mask.sum() * voxel_ml)
    print(f"tumour volume {volumes[0][0]:.2f} ml (SR) = {mask.sum()} voxels of the SEG")
    assert_no_phi(node)


def test_sending_gives_up_after_the_limit_with_the_reason(tmp_path):
    """A second node whose destination never answers: after give_up_seconds it stops retrying,
    logs why, and `status` shows the study as send-failed. (accept_from empty: any caller.)"""
    port = free_port()
    node = Node(NODE_BIN, tmp_path, port,
                {"ae_title": "NOBODY", "host": "127.0.0.1", "port": free_port(),
                 "retry_initial_seconds": 0.5, "retry_max_seconds": 1, "give_up_seconds": 3},
                accept_from=[], heatmaps="none",
                rules=[{"modality": ["CR"], "models": ["cxr-pneumonia"]}])
    node.start()
    try:
        src = tmp_path / "cxr.dcm"
        ds = new_study(CXR, src)
        r = subprocess.run(["storescu", "-aet", "ANYONE", "-aec", Node.AET, "127.0.0.1",
                            str(port), str(src)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: (node.study_state(ds.StudyInstanceUID) or {}).get("state")
                 == "send-failed", RESULT_TIMEOUT, "the node to give up sending")
        log = node.log()
        assert f"study {ds.StudyInstanceUID}: giving up sending results" in log
        assert "Connection refused" in log
        status = node.status()
        assert f"send-failed  study {ds.StudyInstanceUID}" in status, status
        assert "failed send attempts" in status
    finally:
        node.stop()


def test_multi_instance_study_is_classified_through_the_pipeline(tmp_path):
    """A second node (classification only, heat maps of positive findings, batches of 2): a
    study of four CR instances, one with its pixel data cut short. The node classifies the
    instances with medvision::run_many (its log says so); each good instance gets its SR and
    heat maps, whose probabilities equal `medvision classify` of the same files in the same
    batches exactly and one file at a time to float rounding, with the same decisions; the bad
    instance fails alone, its job naming the file."""
    port = free_port()
    (tmp_path / "node").mkdir()
    # The destination never answers: the results stay in the node's out/ folder, read here.
    node = Node(NODE_BIN, tmp_path / "node", port,
                {"ae_title": "NOBODY", "host": "127.0.0.1", "port": free_port(),
                 "retry_initial_seconds": 60, "retry_max_seconds": 60, "give_up_seconds": 900},
                accept_from=[], heatmaps="positive", batch_size=2,
                rules=[{"modality": ["CR", "DX"], "models": ["cxr-pneumonia"]}])
    base = pydicom.dcmread(CXR)
    study, series = generate_uid(), generate_uid()
    files, sops = [], []
    for n in range(4):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n + 1
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI
        px = ds.pixel_array
        if n == 1:
            px = px[:, ::-1]  # a mirrored image: other scores
        elif n == 3:
            px = px[px.shape[0] // 8:, :]  # cropped
            ds.Rows = px.shape[0]
        ds.PixelData = np.ascontiguousarray(px).tobytes()
        if n == 2:
            ds.PixelData = ds.PixelData[:1000]  # cut short: fails alone
        path = tmp_path / f"i{n + 1}.dcm"
        ds.save_as(path)
        files.append(path)
        sops.append(ds.SOPInstanceUID)
    node.start()
    try:
        r = subprocess.run(["storescu", "-aet", "ANYONE", "-aec", Node.AET, "127.0.0.1",
                            str(port), *map(str, files)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len([j for j in node.jobs() if j["study_uid"] == study]) == 4,
                 RESULT_TIMEOUT, "the four jobs of the multi-instance study")
        jobs = {j["input"]: j for j in node.jobs() if j["study_uid"] == study}
        log = node.log()
        assert f"study {study}: cxr-pneumonia on 4 instance(s) through the pipeline " \
               "(batches of 2)" in log, log[-3000:]
        assert not jobs[sops[2]]["ok"]
        assert jobs[sops[2]]["error"].startswith("MV_ERR_") and sops[2] in \
            jobs[sops[2]]["error"], jobs[sops[2]]
        for n in (0, 1, 3):
            assert jobs[sops[n]]["ok"] and jobs[sops[n]]["outputs"] >= 1, jobs[sops[n]]
        out = sorted((node.data_dir / "studies" / study / "out").glob("*.dcm"))
        srs, scs = {}, {}
        for p in out:
            ds = pydicom.dcmread(p)
            if str(ds.SOPClassUID) in SR_CLASSES:
                refs = [str(i.ReferencedSOPInstanceUID)
                        for s in ds.CurrentRequestedProcedureEvidenceSequence
                        for r in s.ReferencedSeriesSequence for i in r.ReferencedSOPSequence]
                srs[refs[0]] = ds
            elif str(ds.SOPClassUID) == SC_CLASS:
                scs.setdefault(str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID),
                               []).append(ds)
        assert set(srs) == {sops[0], sops[1], sops[3]}
        node_files = sorted((node.data_dir / "studies" / study / "in").glob("*.dcm"))
        assert len(node_files) == 4
        # The same files through the CLI in the same order and batches, and one at a time.
        # (The CLI exits non-zero for the bad file and prints its error line.)
        run = subprocess.run([str(CLI_BIN), "classify", *map(str, files), "--model",
                              "cxr-pneumonia", "--batch", "2", "--threads", "2", "--json"],
                             capture_output=True, text=True, timeout=300)
        lines = [json.loads(x) for x in run.stdout.splitlines() if x.strip()]
        assert [d["file"] for d in lines if "error" in d] == [str(files[2])], run.stdout
        batched = {d["file"]: d for d in lines if "labels" in d}
        for n in (0, 1, 3):
            numbers = sr_measurements(srs[sops[n]])
            alone = cli_json("classify", str(files[n]), "--model", "cxr-pneumonia",
                             "--threads", "2")[0]
            for want, tol in ((batched[str(files[n])], 1e-9), (alone, 1e-5)):
                for label in want["labels"]:
                    values = [v for (lab, _, unit, v, _) in numbers
                              if lab == label["label"] and unit == "1"]
                    wanted = [label["probability"]] + (
                        [label["calibrated"]] if label["calibrated"] else [])
                    for w in wanted:
                        assert any(abs(v - w) < tol for v in values), (n, label, values)
            # Heat maps for exactly the positive findings (heatmaps "positive").
            positives = [x for x in alone["labels"] if x.get("decision")]
            assert len(scs.get(sops[n], [])) == len(positives), (n, positives)
        assert_no_phi(node)
    finally:
        node.stop()
