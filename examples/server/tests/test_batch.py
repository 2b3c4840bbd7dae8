"""Batch studies (upload with batch=true): many files, each classified on its own through
medvision's streaming pipeline (Model.classify(list)). Results equal classifying the same files
one by one; a bad file fails alone, named by its place in the upload, never by patient data or
a stored path; the job's progress, the audit, the JSON and the PDF carry the batch."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import medvision
import pytest

from fastapi.testclient import TestClient

from conftest import CXR_DCM, PASSWORD, Api, ServeProcess, add_users, cli, make_settings
from medvision_server import create_app
from images import PHI, cxr_png, cxr_with_phi

MODEL = "cxr-pneumonia"


def batch_files(tmp: Path) -> List[Path]:
    """Real chest X-rays (Kermany, JPEG), the bundled DICOM with made-up PHI, a PNG, and two bad
    files: a truncated DICOM and a text file."""
    from testdata import data_or_skip

    folder = data_or_skip("kermany")
    good = [sorted((folder / label).glob("*.jpeg"))[0] for label in ("NORMAL", "PNEUMONIA")]
    truncated = tmp / "truncated.dcm"
    truncated.write_bytes(CXR_DCM.read_bytes()[:4000])
    notes = tmp / "notes.txt"
    notes.write_text("not an image\n")
    return [good[0], cxr_with_phi(tmp / "phi.dcm"), truncated, cxr_png(tmp / "cxr.png"), notes,
            good[1]]


BAD = {2: ("MV_ERR_CORRUPT_DATA", "MV_ERR_IO"), 4: ("MV_ERR_UNSUPPORTED_FORMAT",)}


def one_by_one(model: medvision.Model, paths: List[Path]) -> Dict[int, List[Dict[str, Any]]]:
    """The labels each good file gets from load_image + classify, one at a time."""
    out = {}
    for i, p in enumerate(paths):
        if i not in BAD:
            out[i] = model.classify(medvision.load_image(p)).to_dict()["labels"]
    return out


def same_labels(item: Dict[str, Any], want: List[Dict[str, Any]]) -> None:
    got = item["labels"]
    assert [x["label"] for x in got] == [x["label"] for x in want]
    for g, w in zip(got, want):
        assert g["probability"] == w["probability"] and g["logit"] == w["logit"], (g, w)
        assert g["calibrated"] == w.get("calibrated")
        assert g["decision"] == w.get("decision") and g["refer"] == bool(w.get("refer"))


def check_items(study: Dict[str, Any], paths: List[Path],
                want: Dict[int, List[Dict[str, Any]]]) -> None:
    assert study["kind"] == "batch" and study["job"]["state"] == "succeeded"
    assert study["job"]["progress"] == 1.0
    (res,) = study["results"]
    assert res["model"]["name"] == MODEL and res["model"]["notice"]
    assert len(res["items"]) == len(paths) and res["failed"] == len(BAD)
    for i, item in enumerate(res["items"]):
        assert item["file"] == f"file {i + 1}"
        if i in BAD:
            assert item["status"] in BAD[i], item
            assert item["error"].startswith(f"file {i + 1}: "), item
            assert not item["labels"]
        else:
            assert item["error"] is None, item
            same_labels(item, want[i])


def test_batch_through_the_real_server_equals_one_by_one(tmp_path: Path, models: Any) -> None:
    """The real `serve` with --batch-size 1: every good file's result equals load_image +
    classify of that file exactly; the two bad files fail alone with their place and the
    problem; nothing identifying or a stored path reaches the JSON, the PDF or the audit."""
    paths = batch_files(tmp_path)
    want = one_by_one(models.get(MODEL), paths)
    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--role", "clinician", "--data", str(data),
               stdin=PASSWORD + "\n").returncode == 0
    srv = ServeProcess(data, "--workers", "1", "--model-threads", "1", "--batch-size", "1")
    srv.start()
    try:
        r = httpx.post(srv.url + "/api/v1/auth/token",
                       data={"username": "alice", "password": PASSWORD}, timeout=30)
        h = {"Authorization": "Bearer " + r.json()["access_token"]}
        r = httpx.post(srv.url + "/api/v1/studies", headers=h, timeout=60,
                       data={"batch": "true", "models": MODEL},
                       files=[("files", (p.name, p.read_bytes())) for p in paths])
        assert r.status_code == 202, r.text
        acc = r.json()
        # The answer maps places to the client's own names (echoed, never stored).
        assert acc["files"] == [f"file {i + 1} ({p.name})" for i, p in enumerate(paths)]
        assert acc["models"] == [MODEL]
        deadline = time.time() + 300
        while time.time() < deadline:
            j = httpx.get(f"{srv.url}/api/v1/jobs/{acc['job_id']}", headers=h, timeout=30).json()
            if j["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert j["state"] == "succeeded", j
        r = httpx.get(f"{srv.url}/api/v1/studies/{acc['study_id']}", headers=h, timeout=30)
        study = r.json()
        check_items(study, paths, want)
        assert "image" not in study["links"] and "report" in study["links"]
        pdf = httpx.get(srv.url + study["links"]["report"], headers=h, timeout=60)
        assert pdf.status_code == 200
        from pypdf import PdfReader

        text = "".join(pg.extract_text() for pg in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "file 3" in text and "not classified" in text and "Not for diagnostic use" in text
        serve_log = srv.log.read_text(errors="replace")
    finally:
        srv.stop()
    blob = r.text + text + serve_log
    for v in PHI.values():
        assert v not in blob and v.replace("^", " ") not in blob
    assert str(data) not in blob and "store/" not in blob
    for p in paths:
        assert p.name not in r.text  # client names are not stored
    rows = cli("audit", "verify", "--data", str(data))
    assert rows.returncode == 0, rows.stdout


@pytest.fixture
def batch4_api(tmp_path: Path, models: Any) -> Iterator[Api]:
    """The app in-process on SQLite, batch studies in batches of 4."""
    app = create_app(make_settings(tmp_path / "data", batch_size=4), models=models)
    add_users(app)
    with TestClient(app) as client:
        yield Api(client, app)


def test_batch_in_larger_batches_equals_run_batch(batch4_api: Api, tmp_path: Path,
                                                  models: Any) -> None:
    """Batches of 4 (the pipeline skips the bad files): each result equals run_batch on the
    same groups of good files, and the job's progress ends at 1."""
    from medvision._results import Classification

    sqlite_api = batch4_api
    app = sqlite_api.app
    paths = batch_files(tmp_path)
    model = models.get(MODEL)
    good = [i for i in range(len(paths)) if i not in BAD]
    images = [medvision.load_image(paths[i]) for i in good]
    want = {}
    for start in range(0, len(good), 4):
        for i, r in zip(good[start:start + 4], model._core.run_batch(images[start:start + 4])):
            want[i] = Classification._from_core(r, None).to_dict()["labels"]
    # The job's progress follows the pipeline (after each batch and each failed file).
    seen: List[float] = []
    set_progress = app.state.queue.set_progress
    app.state.queue.set_progress = lambda jid, w, p: (seen.append(p), set_progress(jid, w, p))
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    r = sqlite_api.c.post("/api/v1/studies", files=files, data={"batch": "true"},
                          headers=sqlite_api.h("alice"))
    assert r.status_code == 202, r.text
    assert r.json()["models"] == [app.state.settings.predict_model] == [MODEL]
    sqlite_api.wait("alice", r.json()["job_id"])
    study = sqlite_api.c.get(f"/api/v1/studies/{r.json()['study_id']}",
                             headers=sqlite_api.h("alice")).json()
    check_items(study, paths, want)
    assert seen == sorted(seen) and seen[-1] == 1.0, seen
    assert any(0 < x < 1 for x in seen), seen
    rows = sqlite_api.c.get("/api/v1/audit?limit=50", headers=sqlite_api.h("root"))
    assert any(x["action"] == "upload" and x["object"] == f"study:{study['id']}"
               for x in rows.json()), rows.text


def test_batch_refusals(sqlite_api: Api) -> None:
    """A batch classifies: a segmentation model or an unknown one is refused at upload."""
    files = [("files", ("a.dcm", CXR_DCM.read_bytes(), "application/octet-stream"))]
    for form, words in (({"batch": "true", "models": "cxr-lungs"}, "segmentation model"),
                        ({"batch": "true", "models": "no-such-model"}, "unknown model")):
        r = sqlite_api.c.post("/api/v1/studies", files=files, data=form,
                              headers=sqlite_api.h("alice"))
        assert r.status_code == 422 and words in r.text, r.text
