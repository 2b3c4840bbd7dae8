"""The audit trail: append-only rows chained by SHA-256. Each row's hash covers its fields and
the previous row's hash; the audit_head row holds the last sequence number and hash, so an
edited row, a deleted row (a gap, a broken link) and deleted newest rows are all found."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from .db import GENESIS, AuditEntry, AuditHead

FIELDS = ("seq", "at", "user", "role", "action", "object", "outcome", "client")


def row_hash(prev_hash: str, fields: dict) -> str:
    canonical = json.dumps({k: fields[k] for k in FIELDS}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + "\n" + canonical).encode()).hexdigest()


class AuditLog:
    """Appends rows in their own transaction (an action is audited even when the request
    fails). ``user``/``object`` are account names and study/job ids: never patient data."""

    def __init__(self, factory: sessionmaker):
        self._factory = factory
        self._lock = threading.Lock()

    def append(self, *, user: str, role: str, action: str, obj: str = "", outcome: str = "ok",
               client: str = "") -> None:
        with self._lock, self._factory() as s:
            # Lock the head first: a write, so SQLite takes its write lock now and PostgreSQL
            # locks the row until commit; concurrent appenders queue here.
            s.execute(update(AuditHead).where(AuditHead.id == 1)
                      .values(seq=AuditHead.seq + 1))
            head = s.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
            fields = {"seq": int(head.seq), "at": round(time.time(), 6), "user": user[:64],
                      "role": role[:16], "action": action[:32], "object": obj[:128],
                      "outcome": outcome[:64], "client": client[:64]}
            h = row_hash(head.hash, fields)
            s.add(AuditEntry(prev_hash=head.hash, hash=h, **fields))
            head.hash = h
            s.commit()


@dataclass
class VerifyResult:
    ok: bool
    rows: int
    bad_seq: Optional[int] = None
    reason: str = ""


def verify(s: Session) -> VerifyResult:
    head = s.get(AuditHead, 1)
    prev, expect_seq, n = GENESIS, 1, 0
    for row in s.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars():
        n += 1
        if row.seq != expect_seq:
            return VerifyResult(False, n, expect_seq,
                                f"row {expect_seq} is missing (next row is {row.seq})")
        if row.prev_hash != prev:
            return VerifyResult(False, n, row.seq,
                                f"row {row.seq} does not link to the row before it")
        fields = {k: getattr(row, k) for k in FIELDS}
        if row_hash(prev, fields) != row.hash:
            return VerifyResult(False, n, row.seq,
                                f"row {row.seq} was changed after it was written")
        prev, expect_seq = row.hash, expect_seq + 1
    if head is None:
        return VerifyResult(False, n, None, "the audit head row is missing")
    if head.seq != expect_seq - 1 or head.hash != prev:
        return VerifyResult(False, n, expect_seq,
                            f"the chain ends at row {expect_seq - 1} but {head.seq} rows "
                            "were written: the newest rows were deleted")
    return VerifyResult(True, n)
