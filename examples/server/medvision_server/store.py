"""The file store: uploads under their SHA-256 (never under a client's file name), each one
sniffed by medvision's own decoders before it is accepted."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple

import medvision

from .settings import Settings

CHUNK = 1 << 20
#: Non-identifying metadata the service keeps (medvision's metadata never holds PHI either).
SAFE_KEYS = {"Modality": "modality", "BodyPartExamined": "body_part", "ViewPosition": "view",
             "StudyInstanceUID": "study_uid", "SeriesInstanceUID": "series_uid"}


class UploadError(Exception):
    """A refused upload: an HTTP status and a message a person can act on."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(index: int, client_name: Optional[str]) -> str:
    """'file 2 (scan.dcm)': the client's base name, reduced to harmless characters, only ever
    echoed back in an error to the client that sent it (never stored or logged)."""
    base = re.split(r"[\\/]", client_name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:80]
    return f"file {index + 1}" + (f" ({base})" if base else "")


@dataclass
class StagedFile:
    path: Path
    sha256: str
    size: int
    name: str
    format: str = ""
    meta: Dict[str, str] = field(default_factory=dict)
    shape: Tuple[int, int, int, int] = (0, 0, 0, 0)
    spacing: Tuple[float, float, float] = (0.0, 0.0, 0.0)


def _medvision_error(e: medvision.MedvisionError, name: str, tmp: Path) -> UploadError:
    msg = str(e).replace(str(tmp), name)
    if isinstance(e, medvision.UnsupportedFormatError):
        return UploadError(415, f"{name}: not an image medvision can read "
                                f"(DICOM, NIfTI, PNG, JPEG, TIFF, BMP): {msg}")
    if isinstance(e, medvision.MedvisionOutOfMemoryError):
        return UploadError(413, f"{name}: the decoded image would be too large: {msg}")
    return UploadError(422, f"{name}: the file could not be decoded: {msg}")


class FileStore:
    def __init__(self, settings: Settings):
        self.s = settings

    def path_of(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a content hash")
        return self.s.store_dir / sha256[:2] / sha256

    def stage(self, index: int, client_name: Optional[str], src: IO[bytes],
              budget: int) -> StagedFile:
        """Copies one upload to a temporary file (counting against ``budget`` bytes) and
        hashes it. Raises UploadError."""
        name = display_name(index, client_name)
        fd, tmp_name = tempfile.mkstemp(dir=self.s.tmp_dir, prefix="upload-")
        tmp = Path(tmp_name)
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = src.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > budget:
                        raise UploadError(413, f"{name}: the upload is larger than the limit of "
                                               f"{self.s.max_upload_bytes // 2**20} MiB")
                    h.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise UploadError(400, f"{name} is empty")
            return StagedFile(tmp, h.hexdigest(), size, name)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def sniff(self, staged: StagedFile) -> None:
        """Decodes a staged file with medvision (the size limit on decoded values stops
        decompression bombs); fills in its format, shape and safe metadata."""
        try:
            with medvision.load_image(staged.path, max_values=self.s.max_image_values) as img:
                staged.format = img.format.lower()
                staged.shape = tuple(img.shape)  # type: ignore[assignment]
                staged.spacing = tuple(img.spacing)  # type: ignore[assignment]
                md = img.metadata
                staged.meta = {v: str(md.get(k, ""))[:64] for k, v in SAFE_KEYS.items()}
        except medvision.MedvisionError as e:
            raise _medvision_error(e, staged.name, staged.path) from None

    def keep(self, f: StagedFile) -> Dict[str, Any]:
        """Moves a staged file to its content address (a file already there is the same
        content: the copy is dropped)."""
        dst = self.path_of(f.sha256)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            f.path.unlink(missing_ok=True)
        else:
            os.chmod(f.path, 0o640)
            os.replace(f.path, dst)
        return {"sha256": f.sha256, "size": f.size, "format": f.format}

    def discard(self, files: List[StagedFile]) -> None:
        for f in files:
            f.path.unlink(missing_ok=True)

    def results_of(self, study_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", study_id):
            raise ValueError("not a study id")
        return self.s.results_dir / study_id

    def remove_results(self, study_id: str) -> None:
        shutil.rmtree(self.results_of(study_id), ignore_errors=True)


def describe(files: List[StagedFile]) -> Dict[str, Any]:
    """What a set of accepted files is: kind, channels, ndim and the safe metadata. Raises
    UploadError when the files do not make one study."""
    formats = {f.format for f in files}
    first = files[0]
    meta = dict(first.meta)
    if len(files) == 1:
        c, d = first.shape[0], first.shape[1]
        return {"kind": first.format, "channels": c, "ndim": 3 if d > 1 else 2, **meta}
    if formats == {"dicom"}:
        series = {f.meta.get("series_uid", "") for f in files}
        if len(series) > 1:
            raise UploadError(422, f"the {len(files)} DICOM files belong to {len(series)} "
                                   "series: upload one series per study")
        return {"kind": "dicom-series", "channels": 1, "ndim": 3, **meta}
    if len(formats) == 1 and len(files) == 2 and first.shape[1] > 1:
        a, b = files
        if a.shape != b.shape or any(abs(x - y) > 1e-3 for x, y in zip(a.spacing, b.spacing)):
            raise UploadError(422, f"{a.name} and {b.name} are not on the same grid "
                                   f"({a.shape[1:]} vs {b.shape[1:]}): two channels of one "
                                   "study must be")
        return {"kind": f"{first.format}-stack", "channels": 2, "ndim": 3, **meta,
                "modality": meta.get("modality") or ""}
    raise UploadError(422, f"{len(files)} files of formats {sorted(formats)} do not make one "
                           "study: upload one image, one DICOM series, or two volumes "
                           "(FLAIR, T1) on one grid")


def route(rules: Tuple[Dict[str, Any], ...], study: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The first routing rule whose match holds for the study, or None."""
    for rule in rules:
        m = rule.get("match", {})
        if "modality" in m and study.get("modality", "") not in m["modality"]:
            continue
        if "channels" in m and study.get("channels") != m["channels"]:
            continue
        if "ndim" in m and study.get("ndim") != m["ndim"]:
            continue
        if "body_part" in m and study.get("body_part", "").upper() not in m["body_part"]:
            continue
        return rule
    return None
