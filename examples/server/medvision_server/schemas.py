"""The API contract (pydantic models; also the OpenAPI at /docs)."""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, Field

Role = Literal["clinician", "radiologist", "admin"]
JobState = Literal["queued", "running", "succeeded", "failed"]


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    name: str
    role: Role


class UserIn(BaseModel):
    name: str = Field(..., regex=r"^[A-Za-z0-9_.-]{1,64}$")
    role: Role
    password: str = Field(..., min_length=8, max_length=1024)


class UserPatch(BaseModel):
    role: Optional[Role] = None
    active: Optional[bool] = None
    password: Optional[str] = Field(None, min_length=8, max_length=1024)


class UserOut(BaseModel):
    id: int
    name: str
    role: Role
    active: bool
    created_at: float


class StudyAccepted(BaseModel):
    study_id: str
    job_id: str
    models: List[str]
    #: A batch (upload with batch=true): the files in upload order, as the client named them
    #: ("file 2 (scan.dcm)"). Results and errors name a file by its place ("file 2") only:
    #: client file names are echoed here and never stored.
    files: List[str] = []


class JobOut(BaseModel):
    id: str
    study_id: str
    state: JobState
    attempts: int
    max_attempts: int
    error: Optional[str]
    progress: float
    created_at: float
    started_at: Optional[float]
    finished_at: Optional[float]


class ModelOut(BaseModel):
    name: str
    version: str
    notice: str
    licence: str = ""


class LabelOut(BaseModel):
    label: str
    #: The calibrated probability (the number to show); None without calibration.
    calibrated: Optional[float]
    #: The model's raw score (sigmoid/softmax of the logit): a score, not a probability.
    probability: float
    logit: float
    decision: Optional[bool]
    refer: bool
    #: The refer band [lo, hi] on the calibrated probability and the rule that made it (as the
    #: manifest records it; "band rule not recorded in the package" for older packages).
    refer_band: Optional[List[float]] = None
    refer_rule: Optional[str] = None
    #: Sigmoid models: the label's conformal set (subset of ["negative", "positive"]).
    conformal_set: Optional[List[str]] = None
    heatmap: Optional[str] = None
    overlay: Optional[str] = None


class RegionOut(BaseModel):
    name: str
    voxels: int
    #: None when the image gives no pixel spacing: `voxels` is then the measurement.
    volume_ml: Optional[float]
    area_mm2: Optional[float]
    components: int
    #: False when the image gives no pixel spacing (PNG, DICOM without a spacing attribute).
    spacing_known: bool = True
    #: What the size is in: "mm2" / "mL", or "pixels" / "voxels" when the spacing is unknown.
    unit: str = "mm2"


class ItemOut(BaseModel):
    """One file of a batch study: its classification, or the error that stopped it alone."""

    #: The file's place in the upload: "file 3".
    file: str
    labels: List[LabelOut] = []
    conformal: Optional[Dict[str, Any]] = None
    warnings: List[str] = []
    ood: Optional[Dict[str, Any]] = None
    #: The file's own failure (the others are unaffected), naming it by its place, and the
    #: library status (MV_ERR_...); None when it was classified.
    error: Optional[str] = None
    status: Optional[str] = None


class ResultOut(BaseModel):
    model: ModelOut
    task: str
    labels: List[LabelOut] = []
    conformal: Optional[Dict[str, Any]] = None
    regions: List[RegionOut] = []
    warnings: List[str] = []
    #: Out-of-distribution score (docs/calibration.md): {"score", "label", "percentile", "far",
    #: "far_above"}; None when the package has no drift reference.
    ood: Optional[Dict[str, Any]] = None
    links: Dict[str, str] = {}
    seconds: float = 0.0
    #: A batch study: one item per file, in upload order (``labels`` is then empty).
    items: List[ItemOut] = []
    #: A batch study: how many of its files failed.
    failed: int = 0


class FindingReview(BaseModel):
    model: str
    label: str
    agree: bool
    comment: str = Field("", max_length=2000)


class ReviewIn(BaseModel):
    findings: List[FindingReview] = Field(..., min_items=1)
    comment: str = Field("", max_length=4000)


class ReviewOut(BaseModel):
    reviewer: str
    created_at: float
    findings: List[FindingReview]
    comment: str


class StudyOut(BaseModel):
    id: str
    owner: str
    created_at: float
    kind: str
    modality: str
    body_part: str
    view: str
    study_uid: str
    series_uid: str
    models: List[str]
    job: JobOut
    results: List[ResultOut] = []
    reviews: List[ReviewOut] = []
    links: Dict[str, str] = {}
    notice: str = "Not for diagnostic use."


class StudySummary(BaseModel):
    id: str
    owner: str
    created_at: float
    modality: str
    view: str
    models: List[str]
    state: JobState
    error: Optional[str]
    progress: float
    reviewed: bool


class Prediction(BaseModel):
    """/api/v1/predict: the seed service's fields (prediction, confidence, probabilities) plus
    calibration, decisions and the refer flag (which replaces the seed's fixed 70 % warning)."""

    prediction: str
    #: The calibrated probability of ``prediction`` (the raw score when uncalibrated).
    confidence: float
    #: Raw scores per label.
    probabilities: Dict[str, float]
    calibrated_probabilities: Dict[str, Optional[float]]
    decisions: Dict[str, Optional[bool]]
    refer: bool
    refer_labels: List[str]
    conformal: Optional[Dict[str, Any]]
    model: ModelOut
    notice: str
    warnings: List[str] = []


class AuditRow(BaseModel):
    seq: int
    at: float
    user: str
    role: str
    action: str
    object: str
    outcome: str
    client: str
    prev_hash: str
    hash: str


class AuditVerify(BaseModel):
    ok: bool
    rows: int
    bad_seq: Optional[int]
    reason: str


class Health(BaseModel):
    status: str
    database: str
    queue_depth: int
    medvision: str
    executor: str
