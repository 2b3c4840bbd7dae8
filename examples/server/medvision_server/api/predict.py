"""POST /api/v1/predict: one image, classified synchronously (nothing is stored)."""
from __future__ import annotations

import time
from typing import Optional

import medvision
from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile

from ..schemas import ModelOut, Prediction
from ..security import Principal, require
from ..store import _medvision_error, display_name

router = APIRouter(prefix="/api/v1", tags=["predict"])


@router.post("/predict", response_model=Prediction)
def predict(request: Request, file: UploadFile = File(...), model: Optional[str] = Form(None),
            p: Principal = Depends(require("clinician", "radiologist"))) -> Prediction:
    state = request.app.state
    settings = state.settings
    name = (model or settings.predict_model).strip()
    if name not in state.installed:
        raise HTTPException(422, detail=f"unknown model '{name[:64]}'")
    label = display_name(0, file.filename)
    data = file.file.read(settings.max_upload_bytes + 1)
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
        with medvision.load_image(data, max_values=settings.max_image_values) as img:
            r = m.classify(img)
    except medvision.MedvisionError as e:
        err = _medvision_error(e, label, "<memory>")
        state.audit.append(user=p.name, role=p.role, action="predict",
                           outcome=f"refused {err.status}",
                           client=request.client.host if request.client else "")
        raise HTTPException(err.status, detail=err.message) from None
    state.metrics.inference.labels(name).observe(time.perf_counter() - t0)
    state.audit.append(user=p.name, role=p.role, action="predict", obj=f"model:{name}",
                       client=request.client.host if request.client else "")
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
