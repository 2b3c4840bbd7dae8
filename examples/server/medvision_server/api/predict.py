"""POST /api/v1/predict: one image, classified synchronously (nothing is stored).

The image comes as a multipart form (field ``file``, optional ``model``: the seed service's
shape) or as the raw request body (any other Content-Type, ``?model=``). The raw body is the
fast path for large images: Starlette 0.26 spools each multipart chunk through a worker thread,
which costs hundreds of ms for an 8 MB DICOM on a loaded 2-core machine."""
from __future__ import annotations

import time
from typing import Optional, Tuple

import medvision
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ..schemas import ModelOut, Prediction
from ..security import Principal, require
from ..store import _medvision_error, display_name

router = APIRouter(prefix="/api/v1", tags=["predict"])

_BODY_DOC = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "model": {"type": "string"}}}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    "parameters": [{"name": "model", "in": "query", "required": False,
                    "schema": {"type": "string"}}]}


async def _read(request: Request, limit: int) -> Tuple[bytes, Optional[str], Optional[str]]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        f = form.get("file")
        if not isinstance(f, UploadFile):
            raise HTTPException(422, detail="the form needs a file in the field 'file'")
        data = await f.read(limit + 1)
        model = form.get("model")
        return data, f.filename, model if isinstance(model, str) else None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return bytes(body), None, request.query_params.get("model")


@router.post("/predict", response_model=Prediction, openapi_extra=_BODY_DOC)
async def predict(request: Request,
                  p: Principal = Depends(require("clinician", "radiologist"))) -> Prediction:
    state = request.app.state
    settings = state.settings
    data, filename, model = await _read(request, settings.max_upload_bytes)
    model = model or request.query_params.get("model")
    return await run_in_threadpool(_classify, request, p, data, filename, model)


def _classify(request: Request, p: Principal, data: bytes, filename: Optional[str],
              model: Optional[str]) -> Prediction:
    state = request.app.state
    settings = state.settings
    client = request.client.host if request.client else ""
    name = (model or settings.predict_model).strip()
    if name not in state.installed:
        raise HTTPException(422, detail=f"unknown model '{name[:64]}'")
    label = display_name(0, filename)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, detail=f"{label}: larger than the limit of "
                                        f"{settings.max_upload_bytes // 2**20} MiB")
    if not data:
        raise HTTPException(400, detail=f"{label} is empty")
    m = state.models.get(name)
    if m.task != "classification":
        raise HTTPException(422, detail=f"model '{name}' is a {m.task} model: /predict "
                                        "classifies; upload a study instead")
    t0 = time.perf_counter()
    try:
        with state.predict_slots, \
                medvision.load_image(data, max_values=settings.max_image_values) as img:
            r = m.classify(img)
    except medvision.MedvisionError as e:
        err = _medvision_error(e, label, "<memory>")
        state.audit.append(user=p.name, role=p.role, action="predict",
                           outcome=f"refused {err.status}", client=client)
        raise HTTPException(err.status, detail=err.message) from None
    state.metrics.inference.labels(name).observe(time.perf_counter() - t0)
    state.audit.append(user=p.name, role=p.role, action="predict", obj=f"model:{name}",
                       client=client)
    top = r.top
    conf = top.calibrated if top.calibrated is not None else top.probability
    return Prediction(
        prediction=top.label, confidence=conf,
        probabilities={s.label: s.probability for s in r.scores},
        calibrated_probabilities={s.label: s.calibrated for s in r.scores},
        decisions={s.label: s.decision for s in r.scores},
        refer=any(s.refer for s in r.scores), refer_labels=[s.label for s in r.scores if s.refer],
        conformal=r.conformal, model=ModelOut(name=r.model, version=r.model_version,
                                              notice=r.notice),
        notice=r.notice, warnings=list(r.warnings))
