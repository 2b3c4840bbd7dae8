"""The PDF report read back (pypdf, and poppler's pdftotext when installed) carries every number
of the JSON result at the report's precision (4 decimals for probabilities), the decisions,
refer flags, conformal sets, region sizes, model names/versions/licences, the review and the
notice."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, List

from pypdf import PdfReader

from conftest import CXR_DCM, Api
from medvision_server.reports import fmt


def count_images(resources: Any) -> int:
    """Image XObjects, also inside form XObjects (reportlab wraps each image in a form)."""
    n = 0
    xobjects = resources.get_object().get("/XObject") if resources else None
    if xobjects is None:  # a page without pictures
        return 0
    for ref in xobjects.get_object().values():
        x = ref.get_object()
        if x.get("/Subtype") == "/Image":
            n += 1
        elif x.get("/Subtype") == "/Form":
            n += count_images(x.get("/Resources"))
    return n


def texts_of(pdf: bytes, tmp_path: Path) -> List[str]:
    out = [" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)]
    if shutil.which("pdftotext"):
        f = tmp_path / "r.pdf"
        f.write_bytes(pdf)
        out.append(subprocess.run(["pdftotext", "-layout", str(f), "-"], capture_output=True,
                                  text=True, check=True).stdout)
    return [re.sub(r"\s+", " ", t) for t in out]


def test_pdf_carries_every_number(api: Api, tmp_path: Path) -> None:
    r = api.upload("alice", CXR_DCM)
    sid = r.json()["study_id"]
    assert api.wait("alice", r.json()["job_id"])["state"] == "succeeded"
    api.c.post(f"/api/v1/studies/{sid}/review", headers=api.h("rad"), json={
        "findings": [{"model": "cxr-pneumonia", "label": "Pneumonia", "agree": False,
                      "comment": "looks clear"}], "comment": "checked twice"})
    s = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice")).json()
    resp = api.c.get(s["links"]["report"], headers=api.h("alice"))
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
    pdf = resp.content
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1
    expected = ["Not for diagnostic use.", s["study_uid"], s["modality"], sid,
                "looks clear", "checked twice", "DISAGREES"]
    n_numbers = 0
    for res in s["results"]:
        m = res["model"]
        expected += [f"{m['name']} {m['version']}", m["notice"]]
        expected.append(m["licence"][:30])
        for x in res["labels"]:
            expected += [x["label"], fmt(x["calibrated"]), fmt(x["probability"])]
            n_numbers += 2
            if x["conformal_set"]:
                expected.append(", ".join(x["conformal_set"]))
        # Issue 16: the out-of-distribution score and the result's warnings are on the PDF.
        if res["ood"] is not None:
            expected.append(f"Out-of-distribution score {res['ood']['score']:.1f}")
        for w in res["warnings"]:
            expected.append(w[:40])
        for g in res["regions"]:
            if g["spacing_known"]:
                expected += [g["name"], str(g["voxels"]), fmt(g["area_mm2"], 1),
                             fmt(g["volume_ml"], 2)]
            else:  # no pixel spacing: the count is the measurement, no false units
                expected += [g["name"], str(g["voxels"]), "spacing unknown"]
            n_numbers += 3
    assert n_numbers >= 2 * 13 + 9
    for text in texts_of(pdf, tmp_path):
        missing = [e for e in expected if e not in text]
        assert not missing, missing
        # Decisions and refer flags: one row per label, in order.
        for res in s["results"]:
            for x in res["labels"]:
                row = re.search(re.escape(x["label"]) + r" " + re.escape(fmt(x["calibrated"])) +
                                r" " + re.escape(fmt(x["probability"])) + r" (positive|negative)"
                                r" (REFER|no)", text)
                if row:  # pypdf keeps table rows on one line; check the flags there
                    assert row.group(1) == ("positive" if x["decision"] else "negative")
                    assert row.group(2) == ("REFER" if x["refer"] else "no")
    # The heat-map overlays and the outline image are embedded.
    images = sum(count_images(p.get("/Resources")) for p in PdfReader(io.BytesIO(pdf)).pages)
    positives = sum(1 for res in s["results"] for x in res["labels"] if x["overlay"])
    assert images == positives + 1


def test_patient_identity_on_the_pdf_only_when_opted_in(tmp_path: Path, models: Any) -> None:
    from fastapi.testclient import TestClient

    from conftest import add_users, make_settings
    from images import PHI, cxr_with_phi
    from medvision_server import create_app

    src = cxr_with_phi(tmp_path / "phi.dcm")
    for opt_in in (False, True):
        app = create_app(make_settings(tmp_path / f"data-{opt_in}", pdf_patient_identity=opt_in),
                         models=models)
        add_users(app)
        with TestClient(app) as c:
            api = Api(c, app)
            r = api.upload("alice", src, models="cxr-pneumonia")
            assert api.wait("alice", r.json()["job_id"])["state"] == "succeeded"
            sid = r.json()["study_id"]
            text = texts_of(c.get(f"/api/v1/studies/{sid}/report.pdf",
                                  headers=api.h("alice")).content, tmp_path)[0]
            assert (PHI["PatientID"] in text) == opt_in
            assert ("Doe" in text) == opt_in
            assert PHI["PatientID"] not in c.get(f"/api/v1/studies/{sid}",
                                                 headers=api.h("alice")).text
