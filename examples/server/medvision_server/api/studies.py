"""Studies: upload (202 + a job), list, result, artefacts, PDF report, radiologist review.
A clinician sees their own studies, a radiologist every study; a study a user may not see
answers 404, like one that does not exist."""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Optional

import medvision

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import Job, ModelResult, Review, Study, User
from ..reports import build_pdf
from ..schemas import (ItemOut, JobOut, LabelOut, ModelOut, RegionOut, ResultOut, ReviewIn,
                       ReviewOut, StudyAccepted, StudyOut, StudySummary)
from ..security import Principal, get_db, require
from ..store import StagedFile, UploadError, describe, route
from .auth import client_of

router = APIRouter(prefix="/api/v1/studies", tags=["studies"])
uploader = require("clinician", "radiologist")
viewer = require("clinician", "radiologist")
reviewer = require("radiologist")

NOTICE = "Not for diagnostic use."


def visible_study(db: Session, p: Principal, study_id: str) -> Study:
    st = db.get(Study, study_id) if re.fullmatch(r"[0-9a-f]{32}", study_id) else None
    if st is None or (p.role == "clinician" and st.owner_id != p.user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no study {study_id}")
    return st


def job_out(j: Job) -> JobOut:
    return JobOut(id=j.id, study_id=j.study_id, state=j.state, attempts=j.attempts,
                  max_attempts=j.max_attempts, error=j.error, progress=j.progress,
                  created_at=j.created_at, started_at=j.started_at, finished_at=j.finished_at)


def parse_models(models: Optional[str], known: Dict[str, str]) -> List[str]:
    names = [m.strip() for m in re.split(r"[,\s]+", models or "") if m.strip()]
    if not names:
        return []
    unknown = [m for m in names if m not in known]
    if unknown:
        raise HTTPException(422, detail=f"unknown model(s) {', '.join(unknown)}; "
                                        f"installed: {', '.join(sorted(known))}")
    return list(dict.fromkeys(names))


def manifest_task(folder: str) -> str:
    """The package's task as its manifest states it (without loading the model here)."""
    try:
        with open(os.path.join(folder, "manifest.json")) as f:
            return str(json.load(f).get("task", "classification"))
    except (OSError, ValueError):
        return "unknown"


def accept_batch(app: Any, chosen: List[str]) -> List[str]:
    """A batch: each file is one image, classified on its own; nothing is decoded here (the job
    decodes every file once, in the streaming pipeline, under the same value limit, and a file
    that cannot be read fails alone). The models: those named, else /predict's; classification
    models only. Returns the models. Raises UploadError."""
    names = chosen or [app.state.settings.predict_model]
    for name in names:
        if name not in app.state.installed:
            raise UploadError(422, f"unknown model '{name[:64]}'")
        task = manifest_task(app.state.installed[name])
        if task != "classification":
            raise UploadError(422, f"model '{name}' is a {task} model: a batch classifies each "
                                   "file; upload a study without batch=true instead")
    return names


@router.post("", response_model=StudyAccepted, status_code=202)
def upload(request: Request, files: List[UploadFile] = File(...),
           models: Optional[str] = Form(None), explain: bool = Form(True),
           batch: bool = Form(False),
           p: Principal = Depends(uploader), db: Session = Depends(get_db)) -> StudyAccepted:
    """One study (one image, one DICOM series, or two volumes on one grid), or with
    ``batch=true`` many images each classified on its own (one result per file and model)."""
    app = request.app
    store = app.state.store
    settings = app.state.settings
    audit = app.state.audit
    client = client_of(request)
    staged: List[StagedFile] = []
    try:
        if not files:
            raise UploadError(400, "no files in the upload")
        if len(files) > 2000:
            raise UploadError(413, f"{len(files)} files: at most 2000 per study")
        chosen = parse_models(models, app.state.installed)
        budget = settings.max_upload_bytes
        for i, f in enumerate(files):
            sf = store.stage(i, f.filename, f.file, budget)
            budget -= sf.size
            staged.append(sf)
        if batch:
            chosen, do_explain = accept_batch(app, chosen), False
            info = {"kind": "batch", "channels": 1, "ndim": 2}
        else:
            for sf in staged:  # all received within the limit: now decode each
                store.sniff(sf)
            info = describe(staged)
            if not chosen:
                rule = route(settings.routing, info)
                if rule is None:
                    raise UploadError(422, f"no routing rule takes this study (modality "
                                           f"'{info.get('modality', '')}', {info['channels']} "
                                           f"channel(s), {info['ndim']}D): name the models "
                                           f"with the form field 'models'")
                chosen, do_explain = list(rule["models"]), bool(rule.get("explain", False))
            else:
                do_explain = explain
        kept = [store.keep(sf) for sf in staged]
    except UploadError as e:
        store.discard(staged)
        audit.append(user=p.name, role=p.role, action="upload", outcome=f"refused {e.status}",
                     client=client)
        raise HTTPException(e.status, detail=e.message) from None
    except HTTPException as e:
        store.discard(staged)
        audit.append(user=p.name, role=p.role, action="upload",
                     outcome=f"refused {e.status_code}", client=client)
        raise
    st = Study(owner_id=p.user_id, kind=info["kind"], modality=info.get("modality", ""),
               body_part=info.get("body_part", ""), view=info.get("view", ""),
               study_uid=info.get("study_uid", ""), series_uid=info.get("series_uid", ""),
               channels=int(info["channels"]), ndim=int(info["ndim"]), files=kept,
               models=chosen, explain=do_explain)
    db.add(st)
    db.flush()
    job = Job(study_id=st.id, max_attempts=settings.max_attempts)
    db.add(job)
    db.commit()
    audit.append(user=p.name, role=p.role, action="upload", obj=f"study:{st.id}", client=client)
    app.state.runner.wake()
    return StudyAccepted(study_id=st.id, job_id=job.id, models=chosen,
                         files=[sf.name for sf in staged] if batch else [])


@router.get("", response_model=List[StudySummary])
def list_studies(limit: int = 200, p: Principal = Depends(viewer),
                 db: Session = Depends(get_db)) -> List[StudySummary]:
    q = (select(Study, Job, User.name).join(Job, Job.study_id == Study.id)
         .join(User, User.id == Study.owner_id).order_by(Study.created_at.desc())
         .limit(max(1, min(limit, 1000))))
    if p.role == "clinician":
        q = q.where(Study.owner_id == p.user_id)
    rows = db.execute(q).all()
    reviewed = set(db.execute(select(Review.study_id).where(
        Review.study_id.in_([st.id for st, _, _ in rows]))).scalars()) if rows else set()
    return [StudySummary(id=st.id, owner=owner, created_at=st.created_at, modality=st.modality,
                         view=st.view, models=list(st.models), state=j.state, error=j.error,
                         progress=j.progress, reviewed=st.id in reviewed)
            for st, j, owner in rows]


def link(study_id: str, rel: str) -> str:
    return f"/api/v1/studies/{study_id}/files/{rel}"


def labels_out(study_id: str, d: Dict[str, Any], heat: Dict[str, str],
               over: Dict[str, str]) -> List[LabelOut]:
    """A classification's labels (the result's to_dict()) with their heat-map links."""
    conformal = d.get("conformal")
    per_label = (conformal or {}).get("labels", {}) if isinstance(conformal, dict) else {}
    return [LabelOut(label=x["label"], calibrated=x.get("calibrated"),
                     probability=x["probability"], logit=x["logit"],
                     decision=x.get("decision"), refer=bool(x.get("refer")),
                     refer_band=(x.get("operating_point") or {}).get("refer_band"),
                     refer_rule=medvision.refer_rule_text(x.get("operating_point") or {})
                     if (x.get("operating_point") or {}).get("refer_band") else None,
                     conformal_set=per_label.get(x["label"]),
                     heatmap=link(study_id, heat[x["label"]]) if x["label"] in heat else None,
                     overlay=link(study_id, over[x["label"]]) if x["label"] in over else None)
            for x in d.get("labels", [])]


def result_out(study_id: str, r: ModelResult) -> ResultOut:
    d: Dict[str, Any] = r.result
    art: Dict[str, Any] = r.artefacts or {}
    heat, over = art.get("heatmaps", {}), art.get("overlays", {})
    conformal = d.get("conformal")
    labels = labels_out(study_id, d, heat, over)
    regions = [RegionOut(name=g["name"], voxels=g["voxels"], volume_ml=g.get("volume_ml"),
                         area_mm2=g.get("area_mm2"), components=g["components"],
                         spacing_known=bool(g.get("spacing_known", True)),
                         unit=g.get("unit", "mm2"))
               for g in d.get("regions", [])]
    links = {k: link(study_id, art[k]) for k in ("overlay", "mask", "image")
             if k in art and art[k]}
    items = [item_out(x) for x in d.get("items", [])]
    return ResultOut(model=ModelOut(name=r.model, version=r.version, notice=r.notice,
                                    licence=r.licence), task=r.task, labels=labels,
                     conformal=conformal, regions=regions, warnings=d.get("warnings", []),
                     ood=d.get("ood"), links=links, seconds=r.seconds, items=items,
                     failed=int(d.get("failed", 0)))


def item_out(x: Dict[str, Any]) -> ItemOut:
    """One file of a batch: its labels (as a study's, without heat maps) or its error."""
    if "error" in x:
        return ItemOut(file=x["file"], error=x["error"], status=x.get("status"))
    d = x["result"]
    return ItemOut(file=x["file"], labels=labels_out("", d, {}, {}),
                   conformal=d.get("conformal"), warnings=d.get("warnings", []), ood=d.get("ood"))


def reviews_of(db: Session, study_id: str) -> List[ReviewOut]:
    rows = db.execute(select(Review, User.name).join(User, User.id == Review.reviewer_id)
                      .where(Review.study_id == study_id).order_by(Review.created_at)).all()
    return [ReviewOut(reviewer=name, created_at=rv.created_at, findings=rv.findings,
                      comment=rv.comment) for rv, name in rows]


def study_out(db: Session, st: Study) -> StudyOut:
    job = db.execute(select(Job).where(Job.study_id == st.id)).scalar_one()
    owner = db.get(User, st.owner_id)
    results = db.execute(select(ModelResult).where(ModelResult.study_id == st.id)
                         .order_by(ModelResult.id)).scalars().all()
    links = {"job": f"/api/v1/jobs/{job.id}"}
    if job.state == "succeeded":
        links["report"] = f"/api/v1/studies/{st.id}/report.pdf"
        if st.kind != "batch":  # a batch has no one image to show
            links["image"] = link(st.id, "image.png")
    return StudyOut(id=st.id, owner=owner.name if owner else "", created_at=st.created_at,
                    kind=st.kind, modality=st.modality, body_part=st.body_part, view=st.view,
                    study_uid=st.study_uid, series_uid=st.series_uid, models=list(st.models),
                    job=job_out(job), results=[result_out(st.id, r) for r in results],
                    reviews=reviews_of(db, st.id), links=links, notice=NOTICE)


@router.get("/{study_id}", response_model=StudyOut)
def get_study(study_id: str, request: Request, p: Principal = Depends(viewer),
              db: Session = Depends(get_db)) -> StudyOut:
    st = visible_study(db, p, study_id)
    out = study_out(db, st)
    request.app.state.audit.append(user=p.name, role=p.role, action="view",
                                   obj=f"study:{st.id}", client=client_of(request))
    return out


def allowed_files(db: Session, study_id: str) -> set:
    names = {"image.png"}
    for art in db.execute(select(ModelResult.artefacts)
                          .where(ModelResult.study_id == study_id)).scalars():
        for k, v in (art or {}).items():
            if isinstance(v, str):
                names.add(v)
            elif isinstance(v, dict):
                names.update(x for x in v.values() if isinstance(x, str))
    return names


@router.get("/{study_id}/files/{name:path}")
def get_file(study_id: str, name: str, request: Request, p: Principal = Depends(viewer),
             db: Session = Depends(get_db)) -> FileResponse:
    st = visible_study(db, p, study_id)
    # Only names the analysis recorded are served: no path from the client reaches the disk.
    if name not in allowed_files(db, st.id):
        raise HTTPException(404, detail=f"study {study_id} has no file '{name[:100]}'")
    path = request.app.state.store.results_of(st.id) / name
    if not path.is_file():
        raise HTTPException(404, detail=f"study {study_id} has no file '{name[:100]}' yet")
    if name.endswith(".nii.gz"):
        request.app.state.audit.append(user=p.name, role=p.role, action="download",
                                       obj=f"study:{st.id}:{name}", client=client_of(request))
        return FileResponse(path, media_type="application/gzip",
                            filename=f"{st.id}-{name.replace('/', '-')}")
    return FileResponse(path, media_type="image/png")


@router.get("/{study_id}/report.pdf")
def get_report(study_id: str, request: Request, p: Principal = Depends(viewer),
               db: Session = Depends(get_db)) -> Response:
    st = visible_study(db, p, study_id)
    out = study_out(db, st)
    if out.job.state != "succeeded":
        raise HTTPException(409, detail=f"study {study_id} has no result yet "
                                        f"(job {out.job.state})")
    pdf = build_pdf(out, request.app.state.store.results_of(st.id),
                    request.app.state.settings, db_study=st,
                    store=request.app.state.store)
    request.app.state.audit.append(user=p.name, role=p.role, action="download",
                                   obj=f"study:{st.id}:report.pdf", client=client_of(request))
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="medvision-{st.id}.pdf"'})


@router.post("/{study_id}/review", response_model=ReviewOut, status_code=201)
def review(study_id: str, body: ReviewIn, request: Request, p: Principal = Depends(reviewer),
           db: Session = Depends(get_db)) -> ReviewOut:
    st = visible_study(db, p, study_id)
    results = {(r.model, x["label"]) for r in db.execute(
        select(ModelResult).where(ModelResult.study_id == st.id)).scalars()
        for x in r.result.get("labels", [])} | {(r.model, g["name"]) for r in db.execute(
            select(ModelResult).where(ModelResult.study_id == st.id)).scalars()
        for g in r.result.get("regions", [])}
    if not results and st.kind == "batch":
        raise HTTPException(409, detail=f"study {study_id} is a batch: its files are not "
                                        "reviewed as one study's findings")
    if not results:
        raise HTTPException(409, detail=f"study {study_id} has no result to review yet")
    for f in body.findings:
        if (f.model, f.label) not in results:
            raise HTTPException(422, detail=f"study {study_id} has no finding "
                                            f"'{f.label}' of model '{f.model}'")
    rv = Review(study_id=st.id, reviewer_id=p.user_id,
                findings=[f.dict() for f in body.findings], comment=body.comment)
    db.add(rv)
    db.commit()
    request.app.state.audit.append(user=p.name, role=p.role, action="review",
                                   obj=f"study:{st.id}", client=client_of(request))
    return ReviewOut(reviewer=p.name, created_at=rv.created_at, findings=body.findings,
                     comment=body.comment)
