"""Result types: small frozen dataclasses with ``to_dict()`` (JSON-ready)."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import _core


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old}() is deprecated: use {new}() (the same writer, one verb for all)",
                  DeprecationWarning, stacklevel=3)


@dataclass(frozen=True)
class LabelScore:
    """One label's scores in a classification."""

    label: str
    logit: float
    probability: float
    #: Calibrated probability; None when the package carries no calibration.
    calibrated: Optional[float]
    #: Positive/negative at the package's operating point; None when it has none.
    decision: Optional[bool]
    #: The calibrated probability lies in the "refer to a human" band.
    refer: bool
    #: The package's operating point for this label, as its manifest records it ("threshold",
    #: "method", "sensitivity", "specificity", "target", "refer_band"); None without one.
    operating_point: Optional[Dict[str, Any]] = field(default=None, compare=False)

    @property
    def shown(self) -> float:
        """The number a reader is shown and results are ranked by: the calibrated probability,
        or the model's score when the package carries no calibration."""
        return self.probability if self.calibrated is None else self.calibrated

    def describe(self) -> str:
        """One line a person reads: the calibrated probability first, the decision with its
        operating point, the refer band, and the raw score labelled as a score."""
        if self.calibrated is None:
            text = f"{self.label}: score {_percent(self.probability)} (uncalibrated)"
        else:
            text = f"{self.label}: {_percent(self.calibrated)}"
        if self.decision is not None:
            text += ", " + _decision_text(self.decision, self.operating_point)
        if self.refer:
            band = (self.operating_point or {}).get("refer_band")
            text += (f", REFER: in the refer band {_limit(band[0])}-{_limit(band[1])} "
                     f"({refer_rule_text(self.operating_point)})"
                     if band else ", REFER to a radiologist")
        if self.calibrated is not None:
            text += f" (score {_percent(self.probability)})"
        return text

    def __repr__(self) -> str:
        return f"LabelScore({self.describe()})"

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _percent(p: float) -> str:
    """A probability that never rounds to certainty (as the CLI prints it)."""
    if p > 0.999:
        return ">99.9%"
    if p < 0.001:
        return "<0.1%"
    return f"{100.0 * p:.1f}%"


def _limit(p: float) -> str:
    """A threshold or band limit: one decimal, two below 1 %."""
    return f"{100.0 * p:.1f}%" if 100.0 * p >= 1.0 else f"{100.0 * p:.2f}%"


def refer_rule_text(op: Optional[Dict[str, Any]]) -> str:
    """The rule that made a refer band (an operating point's "refer_rule"), as the CLI words it."""
    r = (op or {}).get("refer_rule")
    if not isinstance(r, dict):
        return "band rule not recorded in the package"
    mode = r.get("mode")
    if mode == "predictive_value":
        return (f"predictive-value band: NPV >= {r.get('target_npv', float('nan')):.2f} below, "
                f"PPV >= {r.get('target_ppv', float('nan')):.2f} above")
    if mode == "fixed":
        return f"fixed band: threshold +- {r.get('half_width', float('nan')):.3f}"
    if mode == "logit":
        return f"logit band: threshold odds x/÷ e^{r.get('logit_half_width', float('nan')):.2f}"
    return f"{mode} band"


def _decision_text(decision: bool, op: Optional[Dict[str, Any]]) -> str:
    text = "POSITIVE" if decision else "negative"
    if not op or "threshold" not in op:
        return text
    text += f", threshold {_limit(op['threshold'])}"
    rule = op.get("method", "youden")
    num = (lambda k: f"{op[k]:.2f}" if isinstance(op.get(k), (int, float)) else "?")
    if rule in ("sensitivity", "specificity"):
        return text + f", chosen for {rule} {num('target')}"
    return text + (f", chosen by Youden's J (sensitivity {num('sensitivity')}, "
                   f"specificity {num('specificity')})")


@dataclass(frozen=True)
class Classification:
    """The outcome of a classification model on one image. Not for diagnostic use."""

    model: str
    model_version: str
    notice: str
    #: One score per label, in the manifest's label order.
    scores: Tuple[LabelScore, ...]
    #: Label indices, most probable first.
    ranking: Tuple[int, ...]
    warnings: Tuple[str, ...] = ()
    #: The file the image came from, when a path was classified.
    source: Optional[str] = None
    #: Split-conformal prediction sets, when the package was calibrated with them (else None):
    #: softmax models {"alpha": a, "set": [labels]}, sigmoid models {"alpha": a, "labels":
    #: {label: subset of ["negative", "positive"]}}; each set covers the truth with probability
    #: >= 1 - alpha (docs/calibration.md).
    conformal: Optional[Dict[str, Any]] = None
    #: How the probabilities were calibrated ({"method", "images"}), None when they were not.
    calibration: Optional[Dict[str, Any]] = None
    #: Out-of-distribution score (docs/calibration.md): {"score" (robust SD of the
    #: calibration-time logits; not a probability), "label", "percentile", "far", "far_above"};
    #: None when the package has no drift reference.
    ood: Optional[Dict[str, Any]] = None
    #: The library's result (for the writers); not part of equality.
    _handle: Optional["_core.Result"] = field(default=None, repr=False, compare=False)

    @classmethod
    def _from_core(cls, r: "_core.Result", source: Optional[str] = None) -> "Classification":
        j = json.loads(r.json)
        ops = {e["label"]: e.get("operating_point") for e in j.get("labels", [])}
        scores = tuple(
            LabelScore(label, logit, prob, cal, None if dec < 0 else bool(dec), bool(refer),
                       ops.get(label))
            for (label, logit, prob, cal, dec, refer) in r.scores
        )
        conformal = j.get("conformal")
        return cls(r.model_name, r.model_version, r.notice, scores, tuple(r.ranking),
                   tuple(r.warnings), source, conformal, j.get("calibration"), j.get("ood"), r)

    @property
    def labels(self) -> List[str]:
        return [s.label for s in self.scores]

    @property
    def top(self) -> LabelScore:
        """The most probable label."""
        return self.scores[self.ranking[0]]

    @property
    def ranked(self) -> List[LabelScore]:
        return [self.scores[i] for i in self.ranking]

    @property
    def probabilities(self) -> Dict[str, float]:
        return {s.label: s.probability for s in self.scores}

    @property
    def logits(self) -> np.ndarray:
        """Raw outputs in manifest order (float32), e.g. to calibrate or check drift."""
        return np.array([s.logit for s in self.scores], dtype=np.float32)

    def __getitem__(self, label: str) -> LabelScore:
        for s in self.scores:
            if s.label == label:
                return s
        raise KeyError(label)

    def __repr__(self) -> str:
        """What a person reads: the calibrated probabilities first, in rank order, each
        decision with its operating point, refer bands, conformal sets, and the notice."""
        lines = [f"<Classification {self.model} {self.model_version}: {self.notice}"]
        for s in self.ranked:
            line = "  " + s.describe()
            labels = (self.conformal or {}).get("labels")
            if labels and s.label in labels:
                line += "; conformal set {" + ", ".join(labels[s.label]) + "}"
            lines.append(line)
        if self.conformal and "set" in self.conformal:
            lines.append(f"  conformal set {{{', '.join(self.conformal['set'])}}} at "
                         f"{100 * (1 - self.conformal['alpha']):.0f}% coverage")
        if self.ood is not None and self.ood.get("score") is not None:
            lines.append(f"  out-of-distribution score {self.ood['score']:.1f} "
                         f"({self.ood['label']}, percentile {self.ood['percentile']:.0f} of the "
                         f"calibration images; far above {self.ood['far_above']:.0f})"
                         + (": FAR" if self.ood["far"] else ""))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines) + ">"

    def __reduce__(self):
        # Pickles (e.g. to another process) without the library result, as before it was kept.
        values = tuple(getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "_handle")
        return (type(self), values)

    def write_dicom_sr(self, path: str, source: "_core.Image",
                       seg_path: Optional[str] = None) -> None:
        """A DICOM SR (Comprehensive 3D SR, TID 1500 measurement report) of this result in the
        source's study: per label the coded finding, present / absent, the probability and the
        calibrated probability, the refer flag and the conformal set (``source``: the Image
        decoded from the DICOM file(s) that were classified). docs/writers.md."""
        if self._handle is None:
            raise ValueError("this Classification was not made by a Model (no library result)")
        self._handle.write_dicom_sr(str(path), source, "" if seg_path is None else str(seg_path))

    def to_dict(self) -> Dict[str, Any]:
        """The same object as the C API's mv_result_json() and the CLI's ``--json`` line."""
        d: Dict[str, Any] = {
            "model": {"name": self.model, "version": self.model_version},
            "notice": self.notice,
            "task": "classification",
            "labels": [s.to_dict() for s in self.ranked],
            "ranked_by": ("probability" if not self.scores or self.scores[0].calibrated is None
                          else "calibrated"),
            "calibration": self.calibration,
            "conformal": self.conformal,
            "warnings": list(self.warnings),
            "ood": self.ood,
        }
        if self.source is not None:
            d["file"] = self.source
        return d


@dataclass(frozen=True)
class Explanation:
    """A heat map of where a model looked for one label (classification) or one class over its
    predicted region (segmentation), on the original image's grid."""

    label: str
    #: Classification: the label's probability. Segmentation: the class's mean probability over
    #: the explained region (NaN when the model predicts no such region).
    probability: float
    method: str
    #: Read-only float32 [height, width] ([depth, height, width] for 3D segmentation maps) in
    #: [0, 1]: a view of the library's buffer (no copy).
    heatmap: np.ndarray = field(repr=False)
    _handle: "_core.Heatmap" = field(repr=False, compare=False)
    #: Segmentation: voxels of the explained region on the input grid; None for classification.
    region_voxels: Optional[int] = None
    #: The slice overlays show (the one with the most heat; 0 for 2D maps).
    slice: int = 0

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self.heatmap.shape)

    def write_dicom_sc(self, path: str, source: "_core.Image", alpha: float = 0.5) -> None:
        """Writes the overlay as a DICOM Secondary Capture in the study of ``source`` (an image
        read from DICOM): a new series naming the model and the label, the model's notice in
        ImageComments, referencing the source instance of the slice shown (``slice``). The
        picture carries, below the overlay (which is unchanged), the model's name and version,
        "NOT FOR DIAGNOSTIC USE" and the colour bar, so that a PACS view keeps them."""
        self._handle.write_dicom_sc(str(path), source, alpha)

    def write_nifti(self, path: str) -> None:
        """Writes the map as NIfTI (.nii/.nii.gz) on the source image's grid and geometry."""
        self._handle.write_nifti(str(path))

    def overlay(self, image: "_core.Image", alpha: float = 0.5) -> np.ndarray:
        """Interleaved RGB uint8 [height, width, 3]: the colour map blended over ``image``."""
        return self._handle.overlay(image, alpha)

    def write_png(self, path: str, image: Optional["_core.Image"] = None,
                  alpha: float = 0.5) -> None:
        """Writes the overlay over ``image`` (or the coloured map alone) as a PNG file, with a
        margin below it: the model's name and version, "NOT FOR DIAGNOSTIC USE" and the colour
        bar (cividis). ``overlay()`` gives the picture alone."""
        self._handle.write_png(str(path), image, alpha)

    # One verb per idea: every writer is write_* (as in the C API). The save_* names of 0.1
    # remain for a while; they warn.
    def save_dicom_sc(self, path: str, source: "_core.Image", alpha: float = 0.5) -> None:
        """Deprecated: use write_dicom_sc()."""
        _deprecated("Explanation.save_dicom_sc", "write_dicom_sc")
        self.write_dicom_sc(path, source, alpha)

    def save_nifti(self, path: str) -> None:
        """Deprecated: use write_nifti()."""
        _deprecated("Explanation.save_nifti", "write_nifti")
        self.write_nifti(path)

    def save_png(self, path: str, image: Optional["_core.Image"] = None,
                 alpha: float = 0.5) -> None:
        """Deprecated: use write_png()."""
        _deprecated("Explanation.save_png", "write_png")
        self.write_png(path, image, alpha)

    def to_dict(self, include_heatmap: bool = False) -> Dict[str, Any]:
        d: Dict[str, Any] = {"label": self.label,
                             "probability": None if math.isnan(self.probability) else self.probability,
                             "method": self.method, "shape": list(self.shape), "slice": self.slice}
        if self.region_voxels is not None:
            d["region_voxels"] = self.region_voxels
        if include_heatmap:
            d["heatmap"] = self.heatmap.tolist()
        return d


@dataclass(frozen=True)
class DriftLabel:
    label: str
    ks: float
    p_value: float
    psi: float
    shifted: bool

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """Has a batch's score distribution moved away from the calibration-time one?"""

    batch_size: int
    shifted: bool
    labels: Tuple[DriftLabel, ...]

    @classmethod
    def _from_json(cls, d: Dict[str, Any]) -> "DriftReport":
        labels = tuple(DriftLabel(x["label"], float(x["ks"]), float(x["p_value"]),
                                  float(x["psi"]), bool(x["shifted"])) for x in d["labels"])
        return cls(int(d["batch_size"]), bool(d["shifted"]), labels)

    def to_dict(self) -> Dict[str, Any]:
        return {"batch_size": self.batch_size, "shifted": self.shifted,
                "labels": [x.to_dict() for x in self.labels]}


@dataclass(frozen=True)
class CalibrationReport:
    """What medvision.calibrate() wrote: a new package version and its report."""

    out_dir: str
    name: str
    version: str
    #: The new manifest's "calibration" (the fit) and "thresholds" (operating points).
    calibration: Dict[str, Any] = field(repr=False)
    thresholds: Dict[str, Any] = field(repr=False)
    #: calibration-report.json: metrics before and after, warnings.
    report: Dict[str, Any] = field(repr=False)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)



@dataclass(frozen=True)
class Region:
    """Measurements of one region of a segmentation (a class, or a union the manifest names)."""

    name: str
    voxels: int
    #: 3D: millilitres (0 for 2D images; NaN when the spacing is unknown).
    volume_ml: float
    #: 2D: square millimetres (0 for volumes; NaN when the spacing is unknown).
    area_mm2: float
    #: (column, row, slice), inclusive; -1 when the region is empty.
    bbox_min: Tuple[int, int, int]
    bbox_max: Tuple[int, int, int]
    components: int
    largest_component_voxels: int
    #: LPS millimetres, of the largest component; NaN when empty.
    centroid: Tuple[float, float, float]
    centroid_index: Tuple[float, float, float]
    #: False when the image gives no pixel spacing: ``voxels`` is then the measurement, the
    #: area/volume is NaN and ``centroid`` is in index units (see Image.spacing_source).
    spacing_known: bool = True
    #: True for regions of a volume (depth > 1): the size is volume_ml, else area_mm2.
    volume: bool = False

    @property
    def unit(self) -> str:
        """What the size is in: "mm2" / "mL", or "pixels" / "voxels" when the spacing is
        unknown."""
        if not self.spacing_known:
            return "voxels" if self.volume else "pixels"
        return "mL" if self.volume else "mm2"

    def __repr__(self) -> str:
        if not self.spacing_known:
            size = f"{self.voxels} {self.unit}, spacing unknown"
        elif self.unit == "mL":
            size = f"{self.volume_ml:.2f} mL ({self.voxels} voxels)"
        else:
            size = f"{self.area_mm2:.2f} mm2 ({self.voxels} pixels)"
        return f"Region({self.name!r}: {size}, {self.components} component(s))"

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["unit"] = self.unit
        for key in ("area_mm2", "volume_ml"):  # NaN (spacing unknown) is not JSON
            d[key] = None if d[key] != d[key] else d[key]
        for key in ("centroid", "centroid_index"):  # NaN is not JSON
            d[key] = None if any(v != v for v in d[key]) else list(d[key])
        d["bbox_min"], d["bbox_max"] = list(self.bbox_min), list(self.bbox_max)
        return d


@dataclass(frozen=True)
class Segmentation:
    """The outcome of a segmentation model on one image or volume. Not for diagnostic use."""

    model: str
    model_version: str
    notice: str
    #: Class names by label-map value (0 is the background).
    labels: Tuple[str, ...]
    #: Read-only float32 [depth, height, width] label map on the input grid (class values):
    #: a view of the library's buffer, no copy.
    mask: np.ndarray = field(repr=False)
    #: Read-only float32 [classes, depth, height, width], when asked for (probabilities=True).
    probabilities: Optional[np.ndarray] = field(repr=False)
    regions: Tuple[Region, ...] = ()
    warnings: Tuple[str, ...] = ()
    source: Optional[str] = None
    _handle: "_core.Result" = field(default=None, repr=False, compare=False)

    @classmethod
    def _from_core(cls, r: "_core.Result", source: Optional[str] = None) -> "Segmentation":
        volume = r.mask is not None and r.mask.shape[0] > 1
        regions = tuple(Region(*t, volume=volume) for t in r.regions)
        return cls(r.model_name, r.model_version, r.notice, tuple(r.labels), r.mask,
                   r.probability_map, regions, tuple(r.warnings), source, r)

    def region(self, name: str) -> Region:
        for reg in self.regions:
            if reg.name == name:
                return reg
        raise KeyError(name)

    def write_nifti(self, path: str) -> None:
        """The label map as NIfTI-1 (.nii or .nii.gz) with the input image's affine."""
        self._handle.write_nifti(str(path))

    def write_overlay_png(self, path: str, image: "_core.Image", slice: int = -1) -> None:
        """``image`` (the one segmented) with each class outlined (Okabe-Ito colours); ``slice``
        of a volume, -1 for the slice with the most foreground. Below the picture: the model's
        name and version, "NOT FOR DIAGNOSTIC USE" and a legend (colour and label per class)."""
        self._handle.write_overlay_png(str(path), image, slice)

    def write_dicom_seg(self, path: str, source: "_core.Image") -> None:
        """A DICOM Segmentation object in the source's study, referencing its instances
        (``source``: the Image decoded from the DICOM files that were segmented)."""
        self._handle.write_dicom_seg(str(path), source)

    def write_dicom_sr(self, path: str, source: "_core.Image",
                       seg_path: Optional[str] = None) -> None:
        """A DICOM SR (TID 1500 measurement report) of this result in the source's study: per
        region its volume (mL), area (mm2) or, without a pixel spacing, pixel count. With
        ``seg_path`` (the file write_dicom_seg wrote for this result) each class's group
        references its segment. docs/writers.md."""
        self._handle.write_dicom_sr(str(path), source, "" if seg_path is None else str(seg_path))

    def to_dict(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {
            "model": {"name": self.model, "version": self.model_version},
            "notice": self.notice, "task": "segmentation", "classes": list(self.labels),
            "shape": list(self.mask.shape), "regions": [r.to_dict() for r in self.regions],
            "warnings": list(self.warnings)}
        if self._handle is not None:
            # Where the pixel spacing came from ({"source", "mm", "note"}), as the library says.
            d["spacing"] = json.loads(self._handle.json).get("spacing")
        if self.source is not None:
            d["file"] = self.source
        return d
