"""The job table's rules, driven step by step (no runner threads): leases taken over when they
expire, exponential back-off for transient errors, attempts exhausted -> failed with a reason."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from conftest import CXR_DCM, Api, add_users, make_settings
from medvision_server import create_app
from medvision_server.db import Job


def stepped_api(tmp_path: Path, db_url: str, models: Any, **kw: Any) -> Api:
    app = create_app(make_settings(tmp_path / "data", db_url, **kw), start_jobs=False,
                     models=models)
    add_users(app)
    return Api(TestClient(app), app)


def job_row(api: Api, jid: str) -> Job:
    with api.app.state.sessions() as db:
        return db.get(Job, jid)


def test_transient_errors_back_off_then_fail(tmp_path: Path, db_url: str, models: Any) -> None:
    api = stepped_api(tmp_path, db_url, models, backoff_s=0.3, max_attempts=3)
    q, runner = api.app.state.queue, api.app.state.runner
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    sid, jid = r.json()["study_id"], r.json()["job_id"]
    # A fault that is not the input's: the results folder cannot be created (a file is there).
    api.app.state.store.results_of(sid).write_text("in the way")
    for attempt in (1, 2, 3):
        claimed = None
        deadline = time.time() + 30
        while claimed is None and time.time() < deadline:
            claimed = q.claim(runner.worker_id)
            if claimed is None:
                assert job_row(api, jid).state == "queued"  # waiting out its back-off
                time.sleep(0.05)
        assert claimed == (jid, sid, attempt)
        t_fail = time.time()
        runner.run_one(*claimed)
        t_after = time.time()
        j = job_row(api, jid)
        assert "FileExistsError" in j.error or "NotADirectoryError" in j.error, j.error
        if attempt < 3:
            assert j.state == "queued"
            # The next try is due backoff * 2^(attempt - 1) after the failure (a schedule
            # computed from the clock at the failure, bounded by the times around it).
            wait = 0.3 * 2 ** (attempt - 1)
            assert t_fail + wait <= j.next_run_at <= t_after + wait
        else:
            assert j.state == "failed" and j.attempts == 3 and j.finished_at
    # The fault cleared and a new study: it succeeds on the first attempt.
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    claimed = q.claim(runner.worker_id)
    runner.run_one(*claimed)
    assert job_row(api, r.json()["job_id"]).state == "succeeded"


def test_expired_lease_is_taken_over(tmp_path: Path, db_url: str, models: Any) -> None:
    api = stepped_api(tmp_path, db_url, models, lease_s=0.3, max_attempts=2)
    q = api.app.state.queue
    r = api.upload("alice", CXR_DCM, models="cxr-pneumonia")
    jid = r.json()["job_id"]
    assert q.claim("worker-a")[0] == jid  # worker-a "crashes": never renews, never finishes
    assert q.claim("worker-b") is None  # the lease still holds
    q.renew([jid], "worker-b")  # renewing someone else's lease does nothing
    time.sleep(0.4)
    assert q.claim("worker-b") == (jid, r.json()["study_id"], 2)
    j = job_row(api, jid)
    assert j.worker == "worker-b" and j.state == "running"
    # worker-a comes back late: its success is refused (compare-and-set on the worker).
    assert not q.succeed(jid, "worker-a", r.json()["study_id"], {"image": "", "results": []})
    time.sleep(0.4)  # worker-b dies too: the attempts are spent
    assert q.claim("worker-c") is None
    j = job_row(api, jid)
    assert j.state == "failed" and "lease expired" in j.error and j.attempts == 2
