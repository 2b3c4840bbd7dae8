"""The service's settings: one typed, frozen object built once at start (from the command line)
and handed to the app factory. Nothing else reads the environment or the command line."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

#: Which models run on which input, first match wins. "match" keys: modality (list; "" for
#: inputs without one, e.g. PNG), channels (int), ndim (2 or 3), body_part (list; absent: any).
#: "explain": Grad-CAM heat maps of each classification label whose decision is positive.
DEFAULT_ROUTING: Tuple[Dict[str, Any], ...] = (
    {"name": "chest X-ray", "match": {"modality": ["CR", "DX"], "channels": 1, "ndim": 2,
                                      "body_part": ["", "CHEST", "THORAX", "LUNG"]},
     "models": ["cxr-pneumonia", "cxr-findings", "cxr-lungs"], "explain": True},
    {"name": "brain MR (FLAIR + T1)", "match": {"modality": ["MR", ""], "channels": 2, "ndim": 3},
     "models": ["brain-tumour"], "explain": False},
)

ROLES = ("clinician", "radiologist", "admin")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    #: Job workers: threads in this process, or Dask dispatchers when ``dask`` is set.
    workers: int = 2
    #: A Dask scheduler address (tcp://host:port); None: a thread pool in the server.
    dask: Optional[str] = None
    #: Torch intra-op threads per model (0: the library's default).
    model_threads: int = 0
    #: Bytes of one upload request (all files together).
    max_upload_bytes: int = 256 * 2**20
    #: Decoded values (channels x depth x height x width) an upload may expand to: stops
    #: decompression bombs before any pixel buffer is allocated.
    max_image_values: int = 2**27
    token_ttl_s: int = 3600
    #: A running job's lease; its worker renews it every lease_s / 3 while it runs.
    lease_s: float = 60.0
    max_attempts: int = 3
    #: Transient errors wait backoff_s * 2^(attempt - 1) before the next attempt.
    backoff_s: float = 2.0
    poll_s: float = 0.5
    login_max_failures: int = 5
    login_window_s: float = 300.0
    routing: Tuple[Dict[str, Any], ...] = field(default=DEFAULT_ROUTING)
    #: Opt-in: print the patient's name and ID on the PDF report (nowhere else, ever).
    pdf_patient_identity: bool = False
    #: /api/v1/predict inferences at once (each uses model_threads): more than the cores can
    #: run only adds thread oversubscription; the other requests wait their turn.
    predict_concurrency: int = 1
    #: The model used by /api/v1/predict when the request names none.
    predict_model: str = "cxr-pneumonia"
    #: Batch studies: images per inference batch of the streaming pipeline (1: results equal
    #: one-by-one classification exactly; larger batches may round the last digits apart).
    batch_size: int = 8

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'medvision-server.db'}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def results_dir(self) -> Path:
        return self.data_dir / "results"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret.key"

    def prepare(self) -> None:
        for d in (self.data_dir, self.store_dir, self.results_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)


def load_routing(path: Optional[str]) -> Tuple[Dict[str, Any], ...]:
    """Routing rules from a JSON file (a list of rules shaped like DEFAULT_ROUTING)."""
    if not path:
        return DEFAULT_ROUTING
    with open(path) as f:
        rules: List[Dict[str, Any]] = json.load(f)
    if not isinstance(rules, list):
        raise ValueError(f"{path}: routing rules must be a JSON list")
    for i, r in enumerate(rules):
        if not isinstance(r, dict) or not isinstance(r.get("models"), list) or not r["models"]:
            raise ValueError(f"{path}: rule {i} needs a non-empty 'models' list")
        if not isinstance(r.get("match", {}), dict):
            raise ValueError(f"{path}: rule {i}: 'match' must be an object")
    return tuple(rules)
