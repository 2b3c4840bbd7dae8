"""kill -9 of the real `serve` process while jobs run; started again, every accepted study ends
succeeded or failed with a reason, the job that was running is taken over when its lease
expires, and the audit chain is intact."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

import httpx

from conftest import CXR_DCM, PASSWORD, ServeProcess, cli


def login(url: str, name: str) -> Dict[str, str]:
    r = httpx.post(url + "/api/v1/auth/token", data={"username": name, "password": PASSWORD},
                   timeout=30)
    r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}


def test_kill9_and_restart_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("user", "add", "alice", "--role", "clinician", "--data", str(data),
               stdin=PASSWORD + "\n").returncode == 0
    opts = ("--workers", "1", "--lease-seconds", "3", "--model-threads", "1",
            "--backoff-seconds", "0.5")
    srv = ServeProcess(data, *opts).start()
    try:
        h = login(srv.url, "alice")
        jobs = []
        for i in range(5):
            r = httpx.post(srv.url + "/api/v1/studies", headers=h, timeout=60,
                           files=[("files", (f"{i}.dcm", CXR_DCM.read_bytes()))])
            assert r.status_code == 202, r.text
            jobs.append(r.json()["job_id"])
        running = None
        deadline = time.time() + 120
        while running is None and time.time() < deadline:
            for jid in jobs:
                j = httpx.get(f"{srv.url}/api/v1/jobs/{jid}", headers=h, timeout=30).json()
                if j["state"] == "running":
                    running = jid
                    break
            time.sleep(0.05)
        assert running, "no job was seen running"
        srv.kill9()
        states = {}
        srv2 = ServeProcess(data, *opts, port=srv.port).start()
        try:
            h = login(srv2.url, "alice")  # tokens survive: same key file
            deadline = time.time() + 400
            while time.time() < deadline:
                states = {jid: httpx.get(f"{srv2.url}/api/v1/jobs/{jid}", headers=h,
                                         timeout=30).json() for jid in jobs}
                if all(j["state"] in ("succeeded", "failed") for j in states.values()):
                    break
                time.sleep(0.5)
            for jid, j in states.items():
                assert j["state"] in ("succeeded", "failed"), j
                if j["state"] == "failed":
                    assert j["error"], j
            assert states[running]["attempts"] >= 2, states[running]
            assert states[running]["state"] == "succeeded", states[running]
            for jid, j in states.items():
                s = httpx.get(f"{srv2.url}/api/v1/studies/{j['study_id']}", headers=h,
                              timeout=30).json()
                if j["state"] == "succeeded":
                    assert [r["model"]["name"] for r in s["results"]] == s["models"]
        finally:
            srv2.stop()
    finally:
        srv.stop()
    r = cli("audit", "verify", "--data", str(data))
    assert r.returncode == 0, r.stdout
