"""The Dask path: jobs run on a LocalCluster with 2 worker processes (models warm per worker)
and give the same results as medvision called directly."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import medvision
import pytest
from fastapi.testclient import TestClient

from conftest import BUILD, CXR_DCM, SERVER, Api, add_users, make_settings
from medvision_server import create_app


def test_jobs_on_a_dask_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(BUILD / "python"), str(SERVER)])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        app = create_app(make_settings(tmp_path / "data", dask=cluster.scheduler_address,
                                       workers=2))
        add_users(app)
        with TestClient(app) as c:
            api = Api(c, app)
            assert c.get("/healthz").json()["executor"].startswith("dask tcp://127.0.0.1")
            jobs = [api.upload("alice", CXR_DCM, models="cxr-pneumonia,cxr-lungs").json()
                    for _ in range(4)]
            for acc in jobs:
                assert api.wait("alice", acc["job_id"])["state"] == "succeeded"
            with medvision.Model("cxr-pneumonia") as m:
                ref = m.classify(str(CXR_DCM)).to_dict()["labels"]
            for acc in jobs:
                s = c.get(f"/api/v1/studies/{acc['study_id']}", headers=api.h("alice")).json()
                got = s["results"][0]["labels"]
                assert [(x["label"], x["probability"], x["calibrated"]) for x in got] == \
                    [(x["label"], x["probability"], x["calibrated"]) for x in ref]
                assert s["results"][1]["regions"]
            # Both worker processes ran jobs, each with its own warm models.
            client = app.state.runner.executor.client
            loaded = client.run(lambda dask_worker: sorted(
                getattr(dask_worker, "_medvision_models").loaded())
                if hasattr(dask_worker, "_medvision_models") else [])
            assert len(loaded) == 2
            assert any(v == ["cxr-lungs", "cxr-pneumonia"] for v in loaded.values())
