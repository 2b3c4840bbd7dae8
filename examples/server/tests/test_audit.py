"""The audit trail: one row per action, hash-chained; `audit verify` (CLI and API) finds an
edited row, a deleted row and deleted newest rows. /healthz and /metrics."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

from sqlalchemy import delete, update

from conftest import CXR_DCM, PASSWORD, Api, cli
from medvision_server.db import AuditEntry


def actions(api: Api) -> List[str]:
    rows = api.c.get("/api/v1/audit?limit=5000", headers=api.h("root")).json()
    return [r["action"] + ":" + r["outcome"] for r in reversed(rows)]


def verify_api(api: Api) -> Any:
    return api.c.get("/api/v1/audit/verify", headers=api.h("root")).json()


def test_actions_are_audited_and_chain_verifies(api: Api) -> None:
    api.c.post("/api/v1/auth/token", data={"username": "alice", "password": "bad password"})
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    sid = r.json()["study_id"]
    api.wait("alice", r.json()["job_id"])
    api.c.get(f"/api/v1/studies/{sid}", headers=api.h("alice"))
    api.c.get(f"/api/v1/studies/{sid}/report.pdf", headers=api.h("alice"))
    api.c.post(f"/api/v1/studies/{sid}/review", headers=api.h("rad"), json={
        "findings": [{"model": "cxr-pneumonia", "label": "Pneumonia", "agree": True}]})
    api.c.post("/api/v1/users", headers=api.h("root"),
               json={"name": "newdoc", "role": "clinician", "password": PASSWORD})
    acts = actions(api)
    for want in ("login:failed", "login:ok", "upload:ok", "view:ok", "download:ok",
                 "review:ok", "user-add:ok"):
        assert want in acts, (want, acts)
    rows = api.c.get("/api/v1/audit", headers=api.h("root")).json()
    up = next(r for r in rows if r["action"] == "upload")
    assert up["user"] == "alice" and up["role"] == "clinician" and up["object"] == f"study:{sid}"
    assert up["client"] and up["at"] > 0 and len(up["prev_hash"]) == 64
    assert verify_api(api)["ok"] is True


def db_dir(api: Api) -> Path:
    return api.app.state.settings.data_dir


def test_verify_finds_edited_and_deleted_rows(api: Api) -> None:
    for _ in range(3):
        api.c.get("/api/v1/audit", headers=api.h("root"))
    for user in ("alice", "bob", "rad"):
        api.token(user)
    url = api.app.state.settings.database_url
    extra = ("--database-url", url) if url else ()
    r = cli("audit", "verify", "--data", str(db_dir(api)), *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    n = verify_api(api)["rows"]
    assert n >= 6
    with api.app.state.sessions() as db:  # someone edits row 3 in the database
        db.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="ok!"))
        db.commit()
    r = cli("audit", "verify", "--data", str(db_dir(api)), *extra)
    assert r.returncode == 1 and "row 3" in r.stdout and "changed" in r.stdout, r.stdout
    with api.app.state.sessions() as db:  # put it back: intact again
        db.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(outcome="ok"))
        db.commit()
    assert cli("audit", "verify", "--data", str(db_dir(api)), *extra).returncode == 0
    with api.app.state.sessions() as db:  # someone deletes row 4
        db.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
        db.commit()
    r = cli("audit", "verify", "--data", str(db_dir(api)), *extra)
    assert r.returncode == 1 and "row 4" in r.stdout and "missing" in r.stdout, r.stdout
    v = verify_api(api)
    assert v["ok"] is False and v["bad_seq"] == 4


def test_verify_finds_deleted_newest_rows(api: Api) -> None:
    api.token("alice")
    api.token("bob")
    api.token("root")  # signed in before the deletion (a sign-in appends a row)
    with api.app.state.sessions() as db:
        last = db.query(AuditEntry).order_by(AuditEntry.seq.desc()).first().seq
        db.execute(delete(AuditEntry).where(AuditEntry.seq == last))
        db.commit()
    v = verify_api(api)
    assert v["ok"] is False and "deleted" in v["reason"]


def test_healthz_and_metrics(api: Api) -> None:
    h = api.c.get("/healthz").json()
    assert h["status"] == "ok" and h["database"] == "ok" and h["executor"] == "threads"
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    api.wait("alice", r.json()["job_id"])
    api.c.post("/api/v1/predict", headers=api.h("alice"),
               files={"file": ("x.dcm", CXR_DCM.read_bytes())})
    text = api.c.get("/metrics").text
    for needle in ('medvision_http_requests_total{method="POST",route="/api/v1/studies",'
                   'status="202"} 1.0',
                   'medvision_http_request_seconds_bucket{le="0.2",method="POST",'
                   'route="/api/v1/predict"}',
                   'medvision_job_seconds_count{outcome="succeeded"} 1.0',
                   'medvision_inference_seconds_count{model="cxr-pneumonia"} 2.0',
                   "medvision_queue_depth 0.0"):
        assert needle in text, needle
