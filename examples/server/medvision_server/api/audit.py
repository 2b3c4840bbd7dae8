"""The audit trail (admin): GET /api/v1/audit (newest first), GET /api/v1/audit/verify."""
from __future__ import annotations

from typing import List

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..db import AuditEntry
from ..schemas import AuditRow, AuditVerify
from ..security import Principal, get_db, require
from .auth import client_of

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
admin = require("admin")


@router.get("", response_model=List[AuditRow])
def list_audit(request: Request, limit: int = Query(200, ge=1, le=5000),
               before: int = Query(0, ge=0), p: Principal = Depends(admin),
               db: Session = Depends(get_db)) -> List[AuditRow]:
    q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if before:
        q = q.where(AuditEntry.seq < before)
    rows = [AuditRow(**{c: getattr(r, c) for c in AuditRow.__fields__})
            for r in db.execute(q).scalars()]
    request.app.state.audit.append(user=p.name, role=p.role, action="audit-view",
                                   client=client_of(request))
    return rows


@router.get("/verify", response_model=AuditVerify)
def verify_audit(p: Principal = Depends(admin), db: Session = Depends(get_db)) -> AuditVerify:
    r = audit.verify(db)
    return AuditVerify(ok=r.ok, rows=r.rows, bad_seq=r.bad_seq, reason=r.reason)
