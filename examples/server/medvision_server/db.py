"""SQLAlchemy models and the engine: SQLite (WAL) under --data by default, PostgreSQL with
--database-url. Times are UNIX seconds (float). No table has a column for patient identity:
studies carry UIDs, modality, body part and view only."""
from __future__ import annotations

import time
import uuid
from typing import Iterator

from sqlalchemy import (JSON, Boolean, Column, Float, ForeignKey, Integer, String, Text,
                        create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, declarative_base, sessionmaker

Base = declarative_base()


def new_id() -> str:
    return uuid.uuid4().hex


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True)
    name = Column(String(64), unique=True, nullable=False)
    role = Column(String(16), nullable=False)
    password_hash = Column(String(256), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(Float, nullable=False, default=time.time)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    jti = Column(String(64), primary_key=True)
    expires_at = Column(Float, nullable=False)


class Study(Base):
    __tablename__ = "studies"
    id = Column(String(32), primary_key=True, default=new_id)
    owner_id = Column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    created_at = Column(Float, nullable=False, default=time.time)
    #: dicom | dicom-series | nifti | png | jpeg | ... (the decoder's format)
    kind = Column(String(32), nullable=False)
    modality = Column(String(16), nullable=False, default="")
    body_part = Column(String(64), nullable=False, default="")
    view = Column(String(16), nullable=False, default="")
    study_uid = Column(String(64), nullable=False, default="")
    series_uid = Column(String(64), nullable=False, default="")
    channels = Column(Integer, nullable=False, default=1)
    ndim = Column(Integer, nullable=False, default=2)
    #: [{"sha256", "size", "format"}] in upload order (client file names are never stored).
    files = Column(JSON, nullable=False)
    models = Column(JSON, nullable=False)
    explain = Column(Boolean, nullable=False, default=True)


class Job(Base):
    __tablename__ = "jobs"
    id = Column(String(32), primary_key=True, default=new_id)
    study_id = Column(String(32), ForeignKey("studies.id"), nullable=False, index=True)
    #: queued -> running -> succeeded | failed
    state = Column(String(16), nullable=False, default="queued", index=True)
    attempts = Column(Integer, nullable=False, default=0)
    max_attempts = Column(Integer, nullable=False, default=3)
    next_run_at = Column(Float, nullable=False, default=time.time)
    lease_until = Column(Float, nullable=True)
    worker = Column(String(64), nullable=True)
    progress = Column(Float, nullable=False, default=0.0)
    error = Column(Text, nullable=True)
    created_at = Column(Float, nullable=False, default=time.time)
    started_at = Column(Float, nullable=True)
    finished_at = Column(Float, nullable=True)


class ModelResult(Base):
    __tablename__ = "model_results"
    id = Column(Integer, primary_key=True)
    study_id = Column(String(32), ForeignKey("studies.id"), nullable=False, index=True)
    model = Column(String(64), nullable=False)
    version = Column(String(32), nullable=False)
    notice = Column(Text, nullable=False)
    task = Column(String(32), nullable=False)
    #: The medvision result's to_dict() (the CLI's --json object).
    result = Column(JSON, nullable=False)
    #: {"heatmaps": {label: relpath}, "overlays": {label: relpath}, "overlay": relpath,
    #:  "mask": relpath, "image": relpath}
    artefacts = Column(JSON, nullable=False)
    licence = Column(Text, nullable=False, default="")
    seconds = Column(Float, nullable=False, default=0.0)


class Review(Base):
    __tablename__ = "reviews"
    id = Column(Integer, primary_key=True)
    study_id = Column(String(32), ForeignKey("studies.id"), nullable=False, index=True)
    reviewer_id = Column(Integer, ForeignKey("users.id"), nullable=False)
    created_at = Column(Float, nullable=False, default=time.time)
    #: [{"model", "label", "agree": bool, "comment"}]
    findings = Column(JSON, nullable=False)
    comment = Column(Text, nullable=False, default="")


class AuditEntry(Base):
    """Append-only: one row per action, each carrying the hash of the previous one."""

    __tablename__ = "audit"
    seq = Column(Integer, primary_key=True, autoincrement=False)
    at = Column(Float, nullable=False)
    user = Column(String(64), nullable=False)
    role = Column(String(16), nullable=False)
    action = Column(String(32), nullable=False)
    object = Column(String(128), nullable=False)
    outcome = Column(String(64), nullable=False)
    client = Column(String(64), nullable=False)
    prev_hash = Column(String(64), nullable=False)
    hash = Column(String(64), nullable=False)


class AuditHead(Base):
    """One row: the last sequence number and hash. Appends lock it first (UPDATE), which
    serialises them in SQLite and PostgreSQL alike; `audit verify` checks the chain ends here,
    so deleting the newest rows shows too."""

    __tablename__ = "audit_head"
    id = Column(Integer, primary_key=True)
    seq = Column(Integer, nullable=False, default=0)
    hash = Column(String(64), nullable=False)


GENESIS = "0" * 64


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_pre_ping=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    return engine


def init_db(engine: Engine) -> sessionmaker:
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False, future=True)
    with factory() as s:
        if s.get(AuditHead, 1) is None:
            s.add(AuditHead(id=1, seq=0, hash=GENESIS))
            try:
                s.commit()
            except Exception:  # another process created it first
                s.rollback()
    return factory


def session_scope(factory: sessionmaker) -> Iterator[Session]:
    s = factory()
    try:
        yield s
    finally:
        s.close()
