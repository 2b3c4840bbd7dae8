"""python3 -m medvision_server serve | user add | audit verify"""
from __future__ import annotations

import argparse
import getpass
import logging
import sys
from pathlib import Path
from typing import List, Optional

from .settings import ROLES, Settings, load_routing


def _settings(a: argparse.Namespace) -> Settings:
    return Settings(data_dir=Path(a.data).resolve(), database_url=a.database_url or "",
                    **({} if not hasattr(a, "port") else dict(
                        host=a.host, port=a.port, workers=a.workers, dask=a.dask,
                        model_threads=a.model_threads, max_upload_bytes=a.max_upload_mb * 2**20,
                        lease_s=a.lease_seconds, backoff_s=a.backoff_seconds,
                        max_attempts=a.max_attempts, routing=load_routing(a.routing),
                        pdf_patient_identity=a.pdf_patient_identity,
                        predict_concurrency=a.predict_concurrency,
                        batch_size=a.batch_size)))


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    s = _settings(a)
    app = create_app(s)
    uvicorn.run(app, host=s.host, port=s.port, log_level=a.log_level, access_log=False)
    return 0


def cmd_user_add(a: argparse.Namespace) -> int:
    from sqlalchemy import select

    from .audit import AuditLog
    from .db import User, init_db, make_engine
    from .security import hash_password

    s = _settings(a)
    s.prepare()
    password = (getpass.getpass("password: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\r\n"))
    try:
        h = hash_password(password)
    except ValueError as e:
        print(f"user add: {e}", file=sys.stderr)
        return 2
    sessions = init_db(make_engine(s.db_url))
    with sessions() as db:
        u = db.execute(select(User).where(User.name == a.name)).scalar_one_or_none()
        if u is not None and not a.update:
            print(f"user add: user '{a.name}' exists (use --update to change role/password)",
                  file=sys.stderr)
            return 1
        if u is None:
            u = User(name=a.name, role=a.role, password_hash=h)
            db.add(u)
        else:
            u.role, u.password_hash, u.active = a.role, h, True
        db.commit()
    AuditLog(sessions).append(user="cli", role="admin", action="user-add",
                              obj=f"user:{a.name}:{a.role}", client="cli")
    print(f"user '{a.name}' ({a.role}) saved")
    return 0


def cmd_audit_verify(a: argparse.Namespace) -> int:
    from .audit import verify
    from .db import init_db, make_engine

    s = _settings(a)
    sessions = init_db(make_engine(s.db_url))
    with sessions() as db:
        r = verify(db)
    if r.ok:
        print(f"audit trail intact: {r.rows} rows")
        return 0
    print(f"audit trail BROKEN at row {r.bad_seq}: {r.reason}")
    return 1


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="medvision_server", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data", required=True, help="data folder (database, store, key)")
        p.add_argument("--database-url", default="",
                       help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite "
                            "in --data)")

    p = sub.add_parser("serve", help="run the service")
    common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--workers", type=int, default=2, help="job worker threads (or Dask "
                                                          "dispatchers)")
    p.add_argument("--dask", default=None, help="Dask scheduler address: run jobs there")
    p.add_argument("--model-threads", type=int, default=0)
    p.add_argument("--max-upload-mb", type=int, default=256)
    p.add_argument("--lease-seconds", type=float, default=60.0)
    p.add_argument("--backoff-seconds", type=float, default=2.0)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--predict-concurrency", type=int, default=1,
                   help="/predict inferences at once (others wait)")
    p.add_argument("--batch-size", type=int, default=Settings.batch_size,
                   help="batch studies: images per inference batch (1: equal to one by one)")
    p.add_argument("--routing", default=None, help="JSON file of routing rules")
    p.add_argument("--pdf-patient-identity", action="store_true",
                   help="print the patient's name and ID on PDF reports (only there)")
    p.add_argument("--log-level", default="warning")
    p.set_defaults(fn=cmd_serve)

    u = sub.add_parser("user", help="manage users").add_subparsers(dest="ucmd", required=True)
    p = u.add_parser("add", help="add a user; the password is read from stdin")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--update", action="store_true", help="change an existing user")
    common(p)
    p.set_defaults(fn=cmd_user_add)

    au = sub.add_parser("audit", help="audit trail").add_subparsers(dest="acmd", required=True)
    p = au.add_parser("verify", help="check the hash chain (exit 1 and the first bad row)")
    common(p)
    p.set_defaults(fn=cmd_audit_verify)

    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
