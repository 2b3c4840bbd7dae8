"""The whole role x route matrix, enforced server-side: clinician (upload, own studies),
radiologist (every study, review), admin (users, audit). A study a user may not see answers
404 like a missing one; no token answers 401 on every protected route."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

from conftest import CXR_DCM, Api

ROLES = ("alice", "bob", "rad", "root")  # clinician (owner), clinician, radiologist, admin


def test_role_route_matrix(api: Api) -> None:
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    assert r.status_code == 202, r.text
    sid, jid = r.json()["study_id"], r.json()["job_id"]
    assert api.wait("alice", jid)["state"] == "succeeded"
    users = api.c.get("/api/v1/users", headers=api.h("root")).json()
    bob_id = next(u["id"] for u in users if u["name"] == "bob")
    dcm = CXR_DCM.read_bytes()
    review = {"findings": [{"model": "cxr-pneumonia", "label": "Pneumonia", "agree": True}]}
    n = iter(range(1000))

    def upload() -> Dict[str, Any]:
        return {"files": [("files", ("x.dcm", dcm, "application/dicom"))],
                "data": {"models": "cxr-pneumonia"}}

    def predict() -> Dict[str, Any]:
        return {"files": [("file", ("x.dcm", dcm, "application/dicom"))]}

    # (method, path, request kwargs, {user: expected status})
    ok_all = {u: 200 for u in ROLES}
    admin_only = {"alice": 403, "bob": 403, "rad": 403, "root": 200}
    studies_ok = {"alice": 200, "bob": 200, "rad": 200, "root": 403}
    own_study = {"alice": 200, "bob": 404, "rad": 200, "root": 403}
    matrix: List[Tuple[str, str, Callable[[], Dict[str, Any]], Dict[str, int]]] = [
        ("GET", "/api/v1/auth/me", dict, ok_all),
        ("GET", "/api/v1/users", dict, admin_only),
        ("POST", "/api/v1/users", lambda: {"json": {"name": f"u{next(n)}", "role": "clinician",
                                                    "password": "password 123"}},
         {"alice": 403, "bob": 403, "rad": 403, "root": 201}),
        ("PATCH", f"/api/v1/users/{bob_id}", lambda: {"json": {"role": "clinician"}},
         admin_only),
        ("GET", "/api/v1/audit", dict, admin_only),
        ("GET", "/api/v1/audit/verify", dict, admin_only),
        ("POST", "/api/v1/studies", upload, {"alice": 202, "bob": 202, "rad": 202,
                                             "root": 403}),
        ("GET", "/api/v1/studies", dict, studies_ok),
        ("GET", f"/api/v1/studies/{sid}", dict, own_study),
        ("GET", f"/api/v1/jobs/{jid}", dict, own_study),
        ("GET", f"/api/v1/studies/{sid}/files/image.png", dict, own_study),
        ("GET", f"/api/v1/studies/{sid}/report.pdf", dict, own_study),
        ("POST", f"/api/v1/studies/{sid}/review", lambda: {"json": review},
         {"alice": 403, "bob": 403, "rad": 201, "root": 403}),
        ("POST", "/api/v1/predict", predict, studies_ok),
    ]
    failures = []
    for method, path, kwargs, expect in matrix:
        r = api.c.request(method, path, **kwargs())
        if r.status_code != 401:
            failures.append((method, path, "no token", r.status_code))
        for user, code in expect.items():
            r = api.c.request(method, path, headers=api.h(user), **kwargs())
            if r.status_code != code:
                failures.append((method, path, user, r.status_code, r.text[:200]))
    assert not failures, failures
    # A clinician's list holds only their own studies; 404 bodies do not say "forbidden".
    assert {s["owner"] for s in api.c.get("/api/v1/studies", headers=api.h("bob")).json()} \
        == {"bob"}
    r = api.c.get(f"/api/v1/studies/{sid}", headers=api.h("bob"))
    assert r.json()["detail"] == f"no study {sid}"
    r = api.c.get("/api/v1/studies/" + "0" * 32, headers=api.h("alice"))
    assert r.status_code == 404 and r.json()["detail"] == "no study " + "0" * 32
    # Open routes.
    for path in ("/healthz", "/metrics", "/", "/docs", "/openapi.json"):
        assert api.c.get(path).status_code == 200, path
