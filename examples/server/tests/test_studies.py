"""Upload -> job -> result, against medvision called directly on the same file; /predict;
bad uploads answer 4xx naming the problem while the server keeps serving; no PHI anywhere."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Dict

import medvision
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import CXR_DCM, Api, add_users, make_settings
from images import PHI, bomb_png, cxr_png, cxr_with_phi
from medvision_server import create_app


def reference(name: str, path: Path) -> Dict[str, Any]:
    with medvision.Model(name) as m:
        return m.classify(str(path)).to_dict()


def test_chest_xray_study(api: Api, models: Any) -> None:
    r = api.upload("alice", CXR_DCM)
    assert r.status_code == 202, r.text
    acc = r.json()
    assert acc["models"] == ["cxr-pneumonia", "cxr-findings", "cxr-lungs"]
    job = api.wait("alice", acc["job_id"])
    assert job["state"] == "succeeded" and job["attempts"] == 1 and job["progress"] == 1.0
    s = api.c.get(f"/api/v1/studies/{acc['study_id']}", headers=api.h("alice")).json()
    assert s["modality"] == "CR" and s["notice"] == "Not for diagnostic use."
    assert [x["model"]["name"] for x in s["results"]] == acc["models"]
    for res in s["results"]:
        m = res["model"]
        assert m["version"] and m["notice"] == "Not for diagnostic use." and m["licence"]
        if res["task"] == "classification":
            ref = reference(m["name"], CXR_DCM)
            assert ref["model"] == {"name": m["name"], "version": m["version"]}
            assert [x["label"] for x in res["labels"]] == [x["label"] for x in ref["labels"]]
            for got, want in zip(res["labels"], ref["labels"]):
                for k in ("probability", "calibrated", "decision", "refer", "logit"):
                    assert got[k] == want[k], (m["name"], got["label"], k)
                # The refer band and the rule that made it (issue 16).
                band = (want.get("operating_point") or {}).get("refer_band")
                assert got["refer_band"] == band
                assert (got["refer_rule"] or "").startswith("predictive-value band") == bool(band)
                # Grad-CAM exactly for the positive findings.
                assert (got["heatmap"] is not None) == bool(want["decision"])
                if got["heatmap"]:
                    png = api.c.get(got["heatmap"], headers=api.h("alice"))
                    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
                    im = Image.open(io.BytesIO(png.content))
                    assert im.size == (224, 224)  # the input's grid
                    assert api.c.get(got["overlay"], headers=api.h("alice")).status_code == 200
            assert res["conformal"] == ref["conformal"]
            assert res["ood"] == ref["ood"] and res["ood"]["score"] >= 0
            assert res["warnings"] == ref["warnings"]
        else:
            with medvision.Model("cxr-lungs") as lm:
                seg = lm.segment(str(CXR_DCM)).to_dict()
            assert [g["name"] for g in res["regions"]] == [g["name"] for g in seg["regions"]]
            for got, want in zip(res["regions"], seg["regions"]):
                assert got["voxels"] == want["voxels"] and got["area_mm2"] == want["area_mm2"]
            for k in ("overlay", "mask"):
                f = api.c.get(res["links"][k], headers=api.h("alice"))
                assert f.status_code == 200 and len(f.content) > 100
    assert any(x["heatmap"] for res in s["results"] for x in res["labels"]), \
        "the example (pneumonia) should have at least one positive finding"
    img = api.c.get(s["links"]["image"], headers=api.h("alice"))
    assert Image.open(io.BytesIO(img.content)).size == (224, 224)
    # Paths outside the recorded artefacts are not served.
    for bad in ("../../secret.key", "..%2F..%2Fsecret.key", "cxr-lungs/../../../secret.key",
                "medvision-server.db"):
        r = api.c.get(f"/api/v1/studies/{acc['study_id']}/files/{bad}", headers=api.h("alice"))
        assert r.status_code == 404, bad


def test_png_needs_models_and_predict(api: Api, tmp_path: Path) -> None:
    png = cxr_png(tmp_path / "chest.png")
    r = api.upload("alice", png)
    assert r.status_code == 422 and "routing rule" in r.json()["detail"]
    r = api.upload("alice", png, models="cxr-pneumonia,cxr-findings")
    assert r.status_code == 202
    assert api.wait("alice", r.json()["job_id"])["state"] == "succeeded"
    r = api.upload("alice", png, models="no-such-model")
    assert r.status_code == 422 and "no-such-model" in r.json()["detail"]

    for path in (CXR_DCM, png):
        r = api.c.post("/api/v1/predict", headers=api.h("alice"),
                       files={"file": (path.name, path.read_bytes())})
        assert r.status_code == 200, r.text
        p = r.json()
        ref = reference("cxr-pneumonia", path)
        top = ref["labels"][0]
        assert p["prediction"] == top["label"]
        assert p["confidence"] == top["calibrated"]
        assert p["probabilities"] == {x["label"]: x["probability"] for x in ref["labels"]}
        assert p["calibrated_probabilities"] == {x["label"]: x["calibrated"]
                                                 for x in ref["labels"]}
        assert p["refer"] == any(x["refer"] for x in ref["labels"])
        assert p["notice"] == "Not for diagnostic use."
        assert p["model"]["name"] == "cxr-pneumonia" and p["model"]["version"]
    r = api.c.post("/api/v1/predict", headers=api.h("alice"), data={"model": "cxr-lungs"},
                   files={"file": ("x.dcm", CXR_DCM.read_bytes())})
    assert r.status_code == 422 and "segmentation" in r.json()["detail"]
    # The raw body (any other Content-Type) gives the same answer as the form.
    form = api.c.post("/api/v1/predict", headers=api.h("alice"),
                      files={"file": ("x.dcm", CXR_DCM.read_bytes())}).json()
    raw = api.c.post("/api/v1/predict?model=cxr-pneumonia", content=CXR_DCM.read_bytes(),
                     headers={**api.h("alice"), "Content-Type": "application/dicom"})
    assert raw.status_code == 200 and raw.json() == form
    r = api.c.post("/api/v1/predict", content=b"", headers={
        **api.h("alice"), "Content-Type": "application/octet-stream"})
    assert r.status_code == 400 and "is empty" in r.json()["detail"]


def test_bad_uploads_4xx_and_server_keeps_serving(api: Api, tmp_path: Path) -> None:
    dcm = CXR_DCM.read_bytes()
    bomb = bomb_png(tmp_path / "bomb.png").read_bytes()
    assert len(bomb) < 2 * 2**20
    cases = [
        ("empty.dcm", b"", 400, "file 1 (empty.dcm) is empty"),
        ("cut.dcm", dcm[: len(dcm) // 2], None, "file 1 (cut.dcm)"),
        ("notes.txt", b"this is not an image\n" * 20, 415, "file 1 (notes.txt)"),
        ("bomb.png", bomb, 413, "file 1 (bomb.png)"),
        ("../../../etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n", 415,
         "file 1 (passwd)"),
        ("..\\..\\win.ini", b"[fonts]\n", 415, "file 1 (win.ini)"),
    ]
    for name, data, code, words in cases:
        for route, field in (("/api/v1/studies", "files"), ("/api/v1/predict", "file")):
            r = api.c.post(route, headers=api.h("alice"),
                           files=[(field, (name, data, "application/octet-stream"))])
            assert 400 <= r.status_code < 500, (name, route, r.status_code, r.text)
            if code is not None:
                assert r.status_code == code, (name, route, r.text)
            detail = r.json()["detail"]
            assert words in detail, (name, route, detail)
            assert str(api.app.state.settings.data_dir) not in detail  # no server paths
        assert api.c.get("/healthz").status_code == 200
    # A traversal name with a real image is accepted and stored under its content hash only.
    r = api.c.post("/api/v1/studies", headers=api.h("alice"), data={"models": "cxr-pneumonia"},
                   files=[("files", ("../../../../tmp/evil.dcm", dcm, "application/dicom"))])
    assert r.status_code == 202
    store = api.app.state.settings.store_dir
    digest = hashlib.sha256(dcm).hexdigest()
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == [digest]
    assert (store / digest[:2] / digest).read_bytes() == dcm
    assert not list(api.app.state.settings.tmp_dir.iterdir())  # refused uploads left nothing
    assert api.wait("alice", r.json()["job_id"])["state"] == "succeeded"


def test_oversized_upload(tmp_path: Path, models: Any) -> None:
    app = create_app(make_settings(tmp_path / "data", max_upload_bytes=2**20), models=models)
    add_users(app)
    api = Api(TestClient(app), app)
    with api.c:
        big = b"\0" * (3 * 2**20)        # refused from Content-Length, before parsing
        bigger_than_limit = b"\0" * (2**20 + 4096)  # refused while streaming to disk
        for data in (big, bigger_than_limit):
            r = api.c.post("/api/v1/studies", headers=api.h("alice"),
                           files=[("files", ("big.dcm", data))])
            assert r.status_code == 413 and "1 MiB" in r.json()["detail"], r.text
        two = [("files", (f"{i}.dcm", b"\0" * (600 * 1024))) for i in range(2)]
        r = api.c.post("/api/v1/studies", headers=api.h("alice"), files=two)
        assert r.status_code == 413 and "file 2 (1.dcm)" in r.json()["detail"]
        assert api.c.get("/healthz").status_code == 200
        assert not list(app.state.settings.tmp_dir.iterdir())


def test_no_phi_anywhere(api: Api, tmp_path: Path) -> None:
    src = cxr_with_phi(tmp_path / "phi.dcm")
    r = api.upload("alice", src, models="cxr-pneumonia,cxr-lungs")
    assert r.status_code == 202
    sid = r.json()["study_id"]
    assert api.wait("alice", r.json()["job_id"])["state"] == "succeeded"
    texts = [api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice")).text,
             api.c.get("/api/v1/studies", headers=api.h("rad")).text,
             api.c.get("/api/v1/audit?limit=5000", headers=api.h("root")).text]
    pdf = api.c.get(f"/api/v1/studies/{sid}/report.pdf", headers=api.h("alice")).content
    from pypdf import PdfReader
    texts.append("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    with api.app.state.engine.connect() as conn:  # every row of every table
        from sqlalchemy import MetaData, select
        md = MetaData()
        md.reflect(conn)
        for t in md.sorted_tables:
            texts.append(json.dumps([list(map(str, row)) for row in conn.execute(select(t))]))
    s = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice")).json()
    assert s["body_part"] == "CHEST" and s["study_uid"]
    blob = "\n".join(texts)
    for value in PHI.values():
        for part in value.split("^"):
            assert part not in blob, part


def test_permanent_failure_at_once(api: Api, tmp_path: Path) -> None:
    png = cxr_png(tmp_path / "c.png")
    # A 2D grey image through a 3D two-channel model: bad input, failed at once with the
    # library's message, no retry.
    r = api.upload("alice", png, models="brain-tumour")
    j = api.wait("alice", r.json()["job_id"])
    assert j["state"] == "failed" and j["attempts"] == 1, j
    assert "Error" in j["error"] and str(api.app.state.settings.data_dir) not in j["error"]


def test_study_list_and_review(api: Api) -> None:
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia,cxr-lungs")
    sid, jid = r.json()["study_id"], r.json()["job_id"]
    assert api.wait("alice", jid)["state"] == "succeeded"
    lst = api.c.get("/api/v1/studies", headers=api.h("alice")).json()
    assert [x["id"] for x in lst] == [sid] and lst[0]["state"] == "succeeded"
    before = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("rad")).json()["results"]
    body = {"findings": [{"model": "cxr-pneumonia", "label": "Pneumonia", "agree": False,
                          "comment": "no consolidation"},
                         {"model": "cxr-lungs", "label": "heart", "agree": True}],
            "comment": "second read"}
    r = api.c.post(f"/api/v1/studies/{sid}/review", json=body, headers=api.h("rad"))
    assert r.status_code == 201, r.text
    bad = {"findings": [{"model": "cxr-pneumonia", "label": "Fracture", "agree": True}]}
    r = api.c.post(f"/api/v1/studies/{sid}/review", json=bad, headers=api.h("rad"))
    assert r.status_code == 422 and "Fracture" in r.json()["detail"]
    s = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice")).json()
    assert s["results"] == before  # the AI result stays as it was
    assert s["reviews"][0]["reviewer"] == "rad" and s["reviews"][0]["comment"] == "second read"
    assert s["reviews"][0]["findings"][0]["agree"] is False
    assert api.c.get("/api/v1/studies", headers=api.h("alice")).json()[0]["reviewed"] is True


def test_dicom_series_and_routing(api: Api, tmp_path: Path) -> None:
    from synth_series import write_ct_series

    folder = tmp_path / "ct"
    folder.mkdir()
    slices = [np.full((32, 32), 40 + 10 * k, np.int16) for k in range(4)]
    write_ct_series(folder, slices, (0.0, 0.0, 0.0), (1.0, 1.0, 2.0), dict(PHI))
    files = sorted(folder.iterdir())
    assert len(files) == 4
    # A CT volume: no default rule takes it; the refusal says why and what to do.
    r = api.upload("alice", *files)
    assert r.status_code == 422, r.text
    d = r.json()["detail"]
    assert "no routing rule" in d and "'CT'" in d and "3D" in d and "models" in d
    # Named models: accepted as one series; a 2D chest model on a volume fails at once with
    # the library's message.
    r = api.upload("alice", *files, models="cxr-pneumonia")
    assert r.status_code == 202, r.text
    sid = r.json()["study_id"]
    j = api.wait("alice", r.json()["job_id"])
    assert j["state"] == "failed" and j["attempts"] == 1 and j["error"]
    s = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice")).json()
    assert s["kind"] == "dicom-series" and s["modality"] == "CT"
    # Two series in one upload are refused.
    other = tmp_path / "ct2"
    other.mkdir()
    write_ct_series(other, slices[:2], (0.0, 0.0, 0.0), (1.0, 1.0, 2.0), {})
    r = api.upload("alice", files[0], sorted(other.iterdir())[0], models="cxr-pneumonia")
    assert r.status_code == 422 and "2 series" in r.json()["detail"]


def test_routing_rules() -> None:
    from medvision_server.settings import DEFAULT_ROUTING
    from medvision_server.store import route

    chest = {"modality": "DX", "channels": 1, "ndim": 2, "body_part": "CHEST"}
    assert route(DEFAULT_ROUTING, chest)["models"] == ["cxr-pneumonia", "cxr-findings",
                                                      "cxr-lungs"]
    assert route(DEFAULT_ROUTING, dict(chest, body_part="HAND")) is None
    assert route(DEFAULT_ROUTING, dict(chest, modality="CT")) is None
    mr = {"modality": "", "channels": 2, "ndim": 3, "body_part": ""}
    assert route(DEFAULT_ROUTING, mr)["models"] == ["brain-tumour"]
    assert route(DEFAULT_ROUTING, dict(mr, channels=1)) is None


def test_brain_mr_flair_t1(sqlite_api: Api, tmp_path: Path) -> None:
    """FLAIR + T1 -> brain-tumour, on a 96 mm cube around the tumour of one BraTS case (the
    model's window: the whole volume takes ~6 min per segmentation on a shared 2-core CPU)."""
    import nibabel as nib
    from testdata import data_or_skip

    api = sqlite_api
    case = data_or_skip("brats/bratsreg2018-flair-t1/case_0")
    gt = np.asarray(nib.load(str(case / "GT_W.nii.gz")).dataobj) > 0
    centre = [int(round(float(c.mean()))) for c in np.nonzero(gt)]
    lo = [min(max(c - 48, 0), n - 96) for c, n in zip(centre, gt.shape)]
    paths = []
    for name in ("FLAIR", "T1"):
        vol = nib.load(str(case / f"{name}.nii.gz"))
        crop = vol.slicer[lo[0]:lo[0] + 96, lo[1]:lo[1] + 96, lo[2]:lo[2] + 96]
        p = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(crop.dataobj, np.float32), crop.affine), str(p))
        paths.append(p)
    flair, t1 = paths
    r = api.upload("rad", flair, t1)
    assert r.status_code == 202, r.text
    assert r.json()["models"] == ["brain-tumour"]
    sid = r.json()["study_id"]
    assert api.wait("rad", r.json()["job_id"], timeout=600)["state"] == "succeeded"
    s = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("rad")).json()
    assert s["kind"].endswith("-stack")
    res = s["results"][0]
    with medvision.Model("brain-tumour") as m:
        ref = m.segment(medvision.stack([str(flair), str(t1)])).to_dict()
    assert [(g["name"], g["voxels"], g["volume_ml"]) for g in res["regions"]] == \
        [(g["name"], g["voxels"], g["volume_ml"]) for g in ref["regions"]]
    assert res["regions"][0]["voxels"] > 0  # the crop holds the tumour
    mask = api.c.get(res["links"]["mask"], headers=api.h("rad"))
    assert mask.status_code == 200 and mask.content[:2] == b"\x1f\x8b"  # gzip
