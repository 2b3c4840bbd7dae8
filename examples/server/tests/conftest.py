"""Fixtures: the app in-process (TestClient) on SQLite or a real PostgreSQL, users of each
role, and helpers to upload and wait for jobs. The real `serve` process is started by the
tests that need it (recovery, browser, load) through serve_process()."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVER = ROOT / "examples" / "server"
BUILD = Path(os.environ.get("MV_BUILD_DIR", ROOT / "build"))
for p in (str(BUILD / "python"), str(SERVER), str(ROOT / "tests" / "support")):
    if p not in sys.path:
        sys.path.insert(0, p)

from fastapi.testclient import TestClient  # noqa: E402

from medvision_server import Settings, create_app  # noqa: E402
from medvision_server.analysis import ModelCache  # noqa: E402
from medvision_server.db import User  # noqa: E402
from medvision_server.security import hash_password  # noqa: E402

from pg import postgres_or_skip  # noqa: E402

CXR_DCM = ROOT / "examples" / "data" / "cxr-example.dcm"
PASSWORD = "correct horse 42"
USERS = {"alice": "clinician", "bob": "clinician", "rad": "radiologist", "root": "admin"}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BUILD / "python"), str(SERVER)])}


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--db", default="sqlite,postgresql",
                     help="database back ends the API tests run on")


def pytest_generate_tests(metafunc: Any) -> None:
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_backend", metafunc.config.getoption("--db").split(","),
                             indirect=False)


@pytest.fixture(scope="session")
def models() -> Iterator[ModelCache]:
    """One warm model cache for the in-process apps of the whole session."""
    cache = ModelCache(num_threads=int(os.environ.get("MV_JOBS", "2")))
    yield cache
    cache.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: Any) -> Iterator[Any]:
    srv = postgres_or_skip(tmp_path_factory.mktemp("pg"))
    yield srv
    srv.stop()


@pytest.fixture
def db_url(db_backend: str, request: Any, tmp_path: Path) -> str:
    if db_backend == "sqlite":
        return ""
    srv = request.getfixturevalue("pg_server")
    return srv.new_database()


def make_settings(data: Path, db_url: str = "", **kw: Any) -> Settings:
    base: Dict[str, Any] = dict(data_dir=data, database_url=db_url, workers=1, poll_s=0.05,
                                lease_s=30.0, backoff_s=0.2, login_max_failures=5)
    base.update(kw)
    return Settings(**base)


class Api:
    def __init__(self, client: TestClient, app: Any):
        self.c, self.app = client, app
        self._tokens: Dict[str, str] = {}

    def token(self, name: str) -> str:
        if name not in self._tokens:
            r = self.c.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            self._tokens[name] = r.json()["access_token"]
        return self._tokens[name]

    def h(self, name: Optional[str]) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name)}"} if name else {}

    def upload(self, name: str, *paths: Path, models: Optional[str] = None) -> Any:
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
        data = {"models": models} if models else {}
        return self.c.post("/api/v1/studies", files=files, data=data, headers=self.h(name))

    def wait(self, name: str, job_id: str, timeout: float = 300.0) -> Dict[str, Any]:
        end = time.time() + timeout
        while time.time() < end:
            j = self.c.get(f"/api/v1/jobs/{job_id}", headers=self.h(name)).json()
            if j["state"] in ("succeeded", "failed"):
                return j
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def add_users(app: Any) -> None:
    with app.state.sessions() as db:
        for name, role in USERS.items():
            db.add(User(name=name, role=role, password_hash=hash_password(PASSWORD)))
        db.commit()


@pytest.fixture
def api(tmp_path: Path, db_url: str, models: ModelCache) -> Iterator[Api]:
    app = create_app(make_settings(tmp_path / "data", db_url), models=models)
    add_users(app)
    with TestClient(app) as client:
        yield Api(client, app)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medvision_server", *args], input=stdin,
                          capture_output=True, text=True, env=ENV, timeout=timeout)


class ServeProcess:
    """The real `serve` on 127.0.0.1 and a free port (its stderr goes to a log file)."""

    def __init__(self, data: Path, *extra: str, port: Optional[int] = None):
        self.data, self.extra = data, extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Optional[subprocess.Popen] = None
        self.log = data.parent / f"serve-{self.port}.log"

    def start(self, timeout: float = 60.0) -> "ServeProcess":
        import httpx

        self.data.mkdir(parents=True, exist_ok=True)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medvision_server", "serve", "--data", str(self.data),
             "--host", "127.0.0.1", "--port", str(self.port), *self.extra],
            env=ENV, stdout=logf, stderr=logf)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"serve did not answer in {timeout} s: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


@pytest.fixture
def sqlite_api(tmp_path: Path, models: ModelCache) -> Iterator[Api]:
    """The app on SQLite only (for the slow cases that need not run twice)."""
    app = create_app(make_settings(tmp_path / "data"), models=models)
    add_users(app)
    with TestClient(app) as client:
        yield Api(client, app)
