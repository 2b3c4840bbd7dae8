"""GET /api/v1/jobs/{id}: a job's state, attempts, error and progress."""
from __future__ import annotations

import re

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy.orm import Session

from ..db import Job
from ..schemas import JobOut
from ..security import Principal, get_db, require
from .studies import job_out, visible_study

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, p: Principal = Depends(require("clinician", "radiologist")),
            db: Session = Depends(get_db)) -> JobOut:
    job = db.get(Job, job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
    if job is None:
        raise HTTPException(404, detail=f"no job {job_id}")
    try:
        visible_study(db, p, job.study_id)
    except HTTPException:
        raise HTTPException(404, detail=f"no job {job_id}") from None
    return job_out(job)
