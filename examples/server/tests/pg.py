"""A real PostgreSQL for the tests: Debian's postgresql (initdb/pg_ctl of the newest
/usr/lib/postgresql/*/bin) in a temporary folder, listening on a Unix socket there only (no TCP).
PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user that
the Debian package creates (runuser). Skips with the reason when that is impossible; fails in CI."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import List, Optional

import pytest


def _bin() -> Optional[Path]:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    for d in reversed(dirs):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    return None


def _skip(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL needed in CI: {reason}")
    pytest.skip(reason)


class PgServer:
    def __init__(self, bindir: Path, run_as: Optional[str]):
        self.bindir, self.run_as = bindir, run_as
        # Not under pytest's tmp (mode 0700 for root): the server's user must reach it.
        self.dir = Path(tempfile.mkdtemp(prefix="mv-pg-"))
        self.data, self.sock = self.dir / "data", self.dir
        self.user = run_as or pwd.getpwuid(os.getuid()).pw_name

    def _cmd(self, *args: str) -> List[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def start(self) -> "PgServer":
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o755)
        r = subprocess.run(self._cmd(str(self.bindir / "initdb"), "-D", str(self.data), "-A",
                                     "trust", "-U", self.user, "-E", "UTF8", "--no-sync"),
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr[-1500:]}")
        opts = f"-c listen_addresses='' -c unix_socket_directories='{self.sock}' -c fsync=off"
        r = subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o",
                                     opts, "-l", str(self.dir / "server.log"), "-w", "-t", "60",
                                     "start"), capture_output=True, text=True, timeout=120)
        if r.returncode:
            log = (self.dir / "server.log").read_text() if (self.dir / "server.log").exists() \
                else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr[-800:]} {log[-1500:]}")
        return self

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{self.user}@/{db}?host={self.sock}"

    def new_database(self) -> str:
        import psycopg2

        name = "mv_" + uuid.uuid4().hex[:12]
        conn = psycopg2.connect(dbname="postgres", user=self.user, host=str(self.sock))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                 "immediate", "-w", "stop"), capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_or_skip(_unused: Path) -> PgServer:
    bindir = _bin()
    if bindir is None:
        _skip("PostgreSQL server not installed (Debian package postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        _skip("python3-psycopg2 not installed")
    run_as = None
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
            run_as = "postgres"
        except KeyError:
            _skip("running as root and there is no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            _skip("running as root and runuser is missing")
    srv = PgServer(bindir, run_as)  # type: ignore[arg-type]
    try:
        return srv.start()
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        srv.stop()
        _skip(f"could not start PostgreSQL here: {e}")
    raise AssertionError("unreachable")
