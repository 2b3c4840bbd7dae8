"""The Pythonic surface over medvision._core: load_image, Model, calibrate."""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _core
from ._core import Image
from ._results import (CalibrationReport, Classification, DriftReport, Explanation,
                       Segmentation)

PathLike = Union[str, "os.PathLike[str]"]
#: Anything medvision can turn into an Image.
ImageLike = Union[Image, PathLike, bytes, bytearray, memoryview, np.ndarray]


#: The C library's defaults (mv_*_options_init(), read through the binding): every signature
#: below takes its defaults from here, or None for "the library's default" where the C value is
#: a "not set" sentinel, so that no default is ever restated. tests/test_defaults.py checks it.
_LOAD = _core.LoadOptions()
_MODEL = _core.ModelOptions()
_SEGMENT = _core.SegmentOptions()
_EXPLAIN = _core.ExplainOptions()
_EVALUATE = _core.EvaluateOptions()
_CAL = _core.CalibrateOptions()


def _given(**kwargs: Any) -> Dict[str, Any]:
    """The keyword arguments that are not None (None keeps the library's default)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def _pair(spacing: Union[None, float, Sequence[float]]) -> Optional[Sequence[float]]:
    if spacing is None:
        return None
    if isinstance(spacing, (int, float)):
        return [float(spacing)] * 2
    return [float(v) for v in spacing]


def load_image(source: Union[PathLike, bytes, bytearray, memoryview], *,
               frame: int = _LOAD.frame, apply_voi: int = _LOAD.apply_voi,
               max_values: int = _LOAD.max_values, series_uid: str = _LOAD.series_uid,
               pixel_spacing: Optional[Sequence[float]] = None) -> Image:
    """Decodes a DICOM, NIfTI, PNG, JPEG, TIFF or BMP image (the format is found from the
    content), or a folder holding one DICOM series, or encoded bytes held in memory.

    The GIL is released while decoding. ``Image.array`` is a read-only view of the decoded
    float32 buffer (no copy). ``pixel_spacing`` (column, row mm, or one number for both)
    replaces the file's spacing, for sources that give none (PNG, JPEG): without one, their
    segmentation sizes are pixel counts (``Image.spacing_source`` is ""). Every default is the
    C library's (``mv_image_load_options_init()``; ``medvision.LoadOptions()`` shows them).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Image.load_memory(source, frame=frame, apply_voi=apply_voi,
                                 max_values=max_values, pixel_spacing=_pair(pixel_spacing))
    if isinstance(source, (str, os.PathLike)):
        return Image.load(os.fspath(source), frame=frame, apply_voi=apply_voi,
                          max_values=max_values, series_uid=series_uid,
                          pixel_spacing=_pair(pixel_spacing))
    raise TypeError(f"load_image() takes a path or bytes, not {type(source).__name__}")


def load_series(paths: Sequence[PathLike], *, series_uid: str = _LOAD.series_uid) -> Image:
    """Reads DICOM files as one volume sorted along the slice normal."""
    return Image.load_series([os.fspath(p) for p in paths], series_uid=series_uid)


def from_numpy(pixels: np.ndarray, *, spacing: Optional[Sequence[float]] = None,
               origin: Optional[Sequence[float]] = None,
               direction: Optional[Sequence[float]] = None) -> Image:
    """An Image from a numpy array: [H, W] grey, [H, W, C] interleaved (C = 1, 3 or 4), or
    [C, D, H, W] planar. The library copies it into float32 (its one image layout); any
    strides are followed, so no copy is made on the Python side for the dtypes it reads
    (float32/64, (u)int8/16/32), and one conversion for others (bool, float16, (u)int64).
    """
    return Image.from_pixels(np.asarray(pixels), spacing=spacing, origin=origin,
                             direction=None if direction is None else np.ravel(direction))


def stack(images: Sequence[ImageLike]) -> Image:
    """Stacks images on one grid into the channels of one image, in the order the model's
    manifest names them (e.g. the FLAIR and T1 volumes of one study)."""
    return Image.stack([_as_image(x) for x in images])


def load_label_map(path: PathLike, image: Image, *, labels: Optional[Sequence[str]] = None,
                   values: Optional[Sequence[int]] = None, overlaps: Optional[str] = None,
                   fractional_threshold: Optional[float] = None,
                   model: Optional["Model"] = None) -> Image:
    """A reference label map for ``image`` (``mv_label_map_load()``, docs/evaluate.md): a DICOM
    SEG placed on the image's grid (segment ``labels[i]`` becomes ``values[i]``, default i + 1;
    no labels: the segment number; frames by referenced instance or position; overlapping
    segments refused unless ``overlaps`` is "lowest" or "highest"; FRACTIONAL segments
    thresholded at ``fractional_threshold``; None: the C library's defaults), or any label map
    medvision loads, checked against the grid. ``model``: the labels and values of that
    segmentation package's masks."""
    if model is not None:
        softmax = model.activation == "softmax"
        names = list(model.labels)[1:] if softmax else list(model.labels)
        labels, values = names, [i + 1 for i in range(len(names))]
    return Image.load_label_map(os.fspath(path), image, labels=list(labels or []),
                                values=list(values or []), overlaps=overlaps,
                                fractional_threshold=fractional_threshold)


def _as_image(x: ImageLike, **load: Any) -> Image:
    """``x`` as an Image; paths and bytes are decoded with the load_image() keywords ``load``."""
    if isinstance(x, Image):
        return x
    if isinstance(x, np.ndarray):
        return from_numpy(x)
    return load_image(x, **load)


def _source(x: ImageLike) -> Optional[str]:
    return os.fspath(x) if isinstance(x, (str, os.PathLike)) else None


class Model:
    """A model package, loaded once and shared: thread-safe, and every call releases the GIL.

    ``Model("cxr-pneumonia")`` finds a package by name on the search path (MEDVISION_MODEL_PATH,
    then the built-in folders); a folder path loads that package. ``device`` is "auto" (CUDA
    when the linked LibTorch has it, else the CPU), "cpu", "cuda" or "cuda:N"; None is the
    library's default ("auto"). Every default is the C library's (``mv_model_options_init()``;
    ``medvision.ModelOptions()`` shows them).
    """

    def __init__(self, name_or_path: PathLike, device: Optional[str] = None, *,
                 num_threads: int = _MODEL.num_threads, precision: str = _MODEL.precision,
                 warmup: bool = _MODEL.warmup, optimize: bool = _MODEL.optimize):
        self._core = _core.Model(os.fspath(name_or_path), **_given(device=device),
                                 num_threads=num_threads, precision=precision, warmup=warmup,
                                 optimize=optimize)
        self._manifest: Optional[Dict[str, Any]] = None

    # -- description -------------------------------------------------------------------
    name = property(lambda self: self._core.name)
    version = property(lambda self: self._core.version)
    notice = property(lambda self: self._core.notice)
    device = property(lambda self: self._core.device)
    task = property(lambda self: self._core.task)
    #: "sigmoid" (labels per image are 0/1) or "softmax" (one class index per image).
    activation = property(lambda self: self._core.activation)

    @property
    def labels(self) -> List[str]:
        return self._core.labels

    @property
    def manifest(self) -> Dict[str, Any]:
        """The package manifest (a parsed copy)."""
        if self._manifest is None:
            self._manifest = json.loads(self._core.manifest_json)
        return self._manifest

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Releases the model now (a call still running in another thread finishes first)."""
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._core)

    # -- inference ------------------------------------------------------------------------
    def classify(self, images: Union[ImageLike, Sequence[ImageLike]], *,
                 batch_size: int = 16, decode_threads: Optional[int] = None,
                 progress: Optional[Callable[[int, int], Optional[bool]]] = None,
                 errors: str = "raise", frame: int = _LOAD.frame,
                 apply_voi: int = _LOAD.apply_voi, max_values: int = _LOAD.max_values,
                 series_uid: str = _LOAD.series_uid,
                 pixel_spacing: Union[None, float, Sequence[float]] = None
                 ) -> Union[Classification, List[Any]]:
        """Classifies one image (returns a Classification) or a list (returns a list in input
        order). Items may be Images, paths, encoded bytes or numpy arrays.

        A list runs through the streaming pipeline (mv_model_run_many, the GIL released): paths
        are decoded on ``decode_threads`` workers (None or 0: min(2, CPUs), the C default) while batches of
        ``batch_size`` run, so only a few full-size images exist at once. One bad file never
        fails the others: with ``errors="return"`` its slot holds the MedvisionError (naming the
        file and the problem); with ``errors="raise"`` (default) the first one is raised after
        the run. ``progress(done, total)`` returning False cancels (CancelledError).

        ``frame``, ``apply_voi``, ``max_values``, ``series_uid`` and ``pixel_spacing`` decode
        paths and encoded bytes exactly as :func:`load_image` with them (the pipeline passes them
        as ``mv_pipeline_options.load``), so ``classify(paths, **opts)`` equals
        ``[classify(load_image(p, **opts)) for p in paths]``; Images and arrays are used as they
        are. Every default is the C library's (``mv_image_load_options_init()``).
        """
        if self.task != "classification":
            raise _core.InvalidArgumentError(
                f"model '{self.name}' is a {self.task} model: use Model.segment() or Model.run()")
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        load = dict(frame=frame, apply_voi=apply_voi, max_values=max_values,
                    series_uid=series_uid, pixel_spacing=_pair(pixel_spacing))
        if isinstance(images, (list, tuple)):
            inputs = [os.fspath(x) if isinstance(x, (str, os.PathLike)) else
                      _as_image(x, **load) for x in images]
            extra = {} if decode_threads is None else {"decode_threads": int(decode_threads)}
            done = self._core.run_many(inputs, batch_size=max(1, int(batch_size)),
                                       progress=progress, **extra, **load)
            out: List[Any] = []
            for x, r in zip(images, done):
                if isinstance(r, BaseException):
                    if errors == "raise":
                        raise r
                    out.append(r)
                else:
                    out.append(Classification._from_core(r, _source(x)))
            return out
        return Classification._from_core(self._core.run(_as_image(images, **load)),
                                         _source(images))

    def logits(self, images: Sequence[ImageLike], *, batch_size: int = 16) -> np.ndarray:
        """Raw outputs [len(images), len(labels)] (float32), e.g. for calibrate()."""
        results = self.classify(list(images), batch_size=batch_size)
        return np.stack([r.logits for r in results]) if results else np.zeros(
            (0, len(self.labels)), np.float32)

    def explain(self, image: ImageLike, *, method: str = _EXPLAIN.method,
                label: Union[None, int, str] = None,
                progress: Optional[Callable[[int, int], Optional[bool]]] = None) -> Explanation:
        """A heat map (Grad-CAM, "gradcam++" or "cam") of where the model looked for ``label``
        (a name or index; None: the most probable), on the original image's grid.

        Segmentation models (2D or 3D): Grad-CAM or Grad-CAM++ of the class's logits summed
        over the region where the model predicts it; ``label`` names the class (None: the only
        foreground class); ``progress(done, total)`` is called after each window, and
        returning False cancels (CancelledError)."""
        if isinstance(label, str):
            try:
                index = self.labels.index(label)
            except ValueError:
                raise _core.InvalidArgumentError(
                    f"'{label}' is not a label of model '{self.name}' "
                    f"(labels: {', '.join(self.labels)})") from None
        else:
            index = None if label is None else int(label)
        h = _core.explain(self._core, _as_image(image), method, progress=progress,
                          **_given(label=index))
        region = h.region_voxels
        return Explanation(h.label, h.probability, method, h.array, h,
                           None if region < 0 else region, h.slice)

    def segment(self, image: ImageLike, *, overlap: Optional[float] = None,
                batch_size: Optional[int] = None, mirror: Optional[bool] = None,
                probabilities: bool = _SEGMENT.probabilities,
                largest_component: Optional[bool] = None,
                fill_holes: Optional[bool] = None,
                progress: Optional[Callable[[int, int], Optional[bool]]] = None
                ) -> Segmentation:
        """Segments a 2D image or a 3D volume: sliding windows with Gaussian blending, the
        probabilities mapped back onto the input grid, a label map, post-processing and
        per-region measurements. None keeps the library's default (``mv_segment_options_init()``:
        the manifest's setting). ``progress(done, total)``
        is called after each batch of windows; returning False cancels (CancelledError).
        Multi-channel models take one image: see medvision.stack()."""
        def tri(x: Optional[bool]) -> Optional[int]:
            return None if x is None else int(bool(x))

        r = self._core.segment(
            _as_image(image), probabilities=probabilities, progress=progress,
            **_given(overlap=None if overlap is None else float(overlap),
                     batch_size=None if batch_size is None else int(batch_size),
                     mirror=tri(mirror), largest_component=tri(largest_component),
                     fill_holes=tri(fill_holes)))
        return Segmentation._from_core(r, _source(image))

    def run(self, image: ImageLike) -> Union[Classification, Segmentation]:
        """Runs the model's task with the manifest's settings: a Classification or a
        Segmentation."""
        r = self._core.run(_as_image(image))
        if r.task == "segmentation":
            return Segmentation._from_core(r, _source(image))
        return Classification._from_core(r, _source(image))

    def drift_check(self, data: Union[np.ndarray, Sequence[ImageLike]], *,
                    batch_size: int = 16) -> DriftReport:
        """Compares a batch's raw outputs (logits [N, labels], or images to run) with the score
        distribution recorded when the package was calibrated."""
        logits = _logits_of(self, data, batch_size)
        return DriftReport._from_json(json.loads(_core.drift_check(self._core, logits)))

    def estimate_prior(self, data: Union[np.ndarray, Sequence[ImageLike]], *,
                       source_prior: Optional[Sequence[float]] = None,
                       description: Optional[str] = None, batch_size: int = 16) -> Dict[str, Any]:
        """The prevalence of each label among unlabelled images (raw outputs [N, labels], or
        images/paths to run), estimated by the EM algorithm of Saerens et al. (2002) on the
        calibrated probabilities, with its likelihood-ratio test and the drift check of the same
        images (``mv_model_estimate_prior()``). ``source_prior``: the calibration set's
        prevalence per label (None: the manifest's); ``description``: provenance text (None:
        none). Returns the report (a dict)."""
        logits = _logits_of(self, data, batch_size)
        kw = {} if description is None else {"description": description}
        return json.loads(_core.estimate_prior(
            self._core, np.asarray(logits, np.float32),
            source_prior=[float(x) for x in (source_prior or [])], **kw))

    def adapt_prior(self, data: Union[np.ndarray, Sequence[ImageLike]], out_dir: PathLike, *,
                    source_prior: Optional[Sequence[float]] = None,
                    description: Optional[str] = None, version: Optional[str] = None,
                    batch_size: int = 16) -> Dict[str, Any]:
        """:meth:`estimate_prior`, then writes a package version to ``out_dir`` whose
        probabilities are corrected for the estimated prevalence and whose thresholds keep every
        decision (``mv_model_adapt_prior_report()``; load it with ``Model(out_dir)``). Returns
        the report, also written as ``prior-shift-report.json``. ``version`` None: "<old>+prior"."""
        logits = _logits_of(self, data, batch_size)
        kw = {k: v for k, v in (("description", description), ("version", version)) if v is not None}
        return json.loads(_core.adapt_prior(
            self._core, np.asarray(logits, np.float32), os.fspath(out_dir),
            source_prior=[float(x) for x in (source_prior or [])], **kw))


def _logits_of(model: Model, data: Union[np.ndarray, Sequence[ImageLike]],
               batch_size: int) -> np.ndarray:
    if isinstance(data, np.ndarray) and data.dtype.kind == "f":
        return data
    return model.logits(list(data), batch_size=batch_size)


def calibrate(model: Model, data: Union[np.ndarray, Sequence[ImageLike]],
              labels: Union[np.ndarray, Sequence[Any]], out_dir: PathLike, *,
              method: str = _CAL.method, rule: str = _CAL.rule, target: float = _CAL.target,
              refer_mode: str = _CAL.refer_mode,
              refer_half_width: float = _CAL.refer_half_width,
              refer_logit_half_width: float = _CAL.refer_logit_half_width,
              refer_npv: float = _CAL.refer_npv, refer_ppv: float = _CAL.refer_ppv,
              conformal_alpha: Optional[float] = None,
              conformal_score: str = _CAL.conformal_score,
              description: str = _CAL.data_description, version: str = _CAL.version,
              batch_size: int = 16) -> CalibrationReport:
    """Fits calibration (temperature, platt or isotonic) and operating points (youden,
    sensitivity or specificity at ``target``) on a labelled validation set, and writes a new
    package version to ``out_dir`` (load it with ``Model(out_dir)``). Every default is the C
    library's (``mv_calibrate_options_init()``).

    ``data``: raw outputs [N, labels] (float), or N images/paths to run through the model.
    ``labels``: for sigmoid models [N, labels] of 0/1 ([N] when the model has one label); for
    softmax models [N] class indices or label names.
    ``refer_mode``: how the "refer to a human" band around each threshold is drawn:
    ``"predictive-value"`` (the band's lower edge reaches NPV ``refer_npv``, its upper edge PPV
    ``refer_ppv``), ``"logit"`` (threshold +/- ``refer_logit_half_width`` in log-odds),
    ``"fixed"`` (threshold +/- ``refer_half_width``) or ``"none"``; ``refer_half_width`` 0
    disables the band in every mode.
    ``conformal_alpha``: also fit split-conformal prediction sets at this miscoverage, scored by
    ``conformal_score``: ``"lac"`` (1 - p of the true class; the smallest sets) or ``"aps"``
    (the probability mass of the classes ranked at or above it; sets adapt to each image's
    uncertainty; softmax models only, InvalidArgumentError on a sigmoid model).
    Returns the report the library returns (nothing is read back from ``out_dir``).
    """
    logits = _logits_of(model, data, batch_size)
    arr = _label_array(model, labels, "calibrate")
    o = _core.CalibrateOptions()
    o.method, o.rule, o.target = method, rule, target
    o.refer_mode, o.refer_half_width = refer_mode, refer_half_width
    o.refer_logit_half_width, o.refer_npv, o.refer_ppv = (refer_logit_half_width, refer_npv,
                                                          refer_ppv)
    o.conformal = conformal_alpha is not None and conformal_alpha > 0
    if o.conformal:
        o.alpha = conformal_alpha
    o.conformal_score = conformal_score
    o.data_description, o.version = description, version
    text = _core.calibrate(model._core, np.asarray(logits, np.float32), arr.astype(np.int32),
                           os.fspath(out_dir), o)
    r = json.loads(text)
    return CalibrationReport(os.fspath(out_dir), r["name"], r["version"],
                             r.get("calibration") or {}, r.get("thresholds") or {}, r["report"])


def _label_array(model: Model, labels: Union[np.ndarray, Sequence[Any]],
                 what: str) -> np.ndarray:
    """Labels as the C API lays them out for ``model`` (its activation, mv_model_activation()):
    softmax: [N] class indices (names are looked up); sigmoid: [N, labels] of 0/1."""
    softmax = model.activation == "softmax"
    lab = list(labels) if not isinstance(labels, np.ndarray) else labels
    if softmax and len(lab) and isinstance(lab[0], str):
        names = model.labels
        unknown = sorted({x for x in lab if x not in names})
        if unknown:
            raise _core.InvalidArgumentError(
                f"{what}: {unknown} are not labels of model '{model.name}'")
        lab = [names.index(x) for x in lab]
    arr = np.asarray(lab)
    if not softmax and arr.ndim == 1 and len(model.labels) == 1:
        arr = arr.reshape(-1, 1)
    return arr


def evaluate(models: Union[Model, Sequence[Model]],
             data: Union[np.ndarray, Sequence[np.ndarray], Sequence[ImageLike]],
             labels: Union[np.ndarray, Sequence[Any], None] = None, *,
             threshold: Optional[float] = None,
             sensitivity: Optional[float] = None, bootstrap: int = _EVALUATE.bootstrap,
             seed: int = _EVALUATE.seed, bins: int = _EVALUATE.bins,
             level: float = _EVALUATE.level, batch_size: int = 16,
             masks: Optional[Sequence[ImageLike]] = None,
             predictions: Optional[Sequence[Sequence[ImageLike]]] = None,
             case_names: Optional[Sequence[str]] = None) -> dict:
    """Evaluates one or more classification models (same labels) on a labelled test set and
    returns the evaluation as a dict (layout: docs/evaluate.md): per label AUROC with a bootstrap
    CI, sensitivity / specificity / PPV / NPV at each package's operating point (and at
    ``threshold`` or at ``sensitivity``), ECE / adaptive ECE / Brier / NLL raw and calibrated,
    refer-band and conformal coverage, curves, and for two or more models a paired comparison
    (DeLong's test for AUROC, paired bootstrap for the rest). Every default is the C library's
    (``mv_evaluate_options_init()``; ``medvision.EvaluateOptions()`` shows them); ``threshold``
    and ``sensitivity`` None: no extra decision.

    ``data``: one raw-output array [N, labels] per model, or N images/paths run through every
    model. ``labels`` as for :func:`calibrate`.

    Segmentation models: ``data`` is N images (paths, Images or arrays) and ``masks`` their N
    reference label maps (paths, Images or integer arrays on the image's grid) whose values are
    the package's label-map values (docs/evaluate.md, "Segmentation"); every model segments every
    image and the result holds per region Dice, HD95 and volume error with bootstrap CIs, per-case
    values, and for two or more models a paired bootstrap of the differences. ``predictions``
    (one sequence of N label maps per model) scores given masks instead of segmenting ``data``
    (which may then be None).
    """
    ms = [models] if isinstance(models, Model) else list(models)
    if not ms:
        raise _core.InvalidArgumentError("evaluate: no models")
    if masks is not None:
        def label_map(x: ImageLike) -> Image:
            # Arrays: [H, W] or [D, H, W] label maps (one channel).
            if isinstance(x, np.ndarray):
                a = np.asarray(x, np.float32)
                return from_numpy(a[None] if a.ndim == 3 else a)
            return _as_image(x)

        refs = list(masks)
        if predictions is not None:
            preds = [list(p) for p in predictions]
            if len(preds) != len(ms) or any(len(p) != len(refs) for p in preds):
                raise _core.InvalidArgumentError(
                    f"evaluate: predictions must hold {len(refs)} masks for each of the "
                    f"{len(ms)} models")
            items = [None] * len(refs)
        else:
            items = list(data)
            if len(refs) != len(items):
                raise _core.InvalidArgumentError(
                    f"evaluate: {len(items)} images but {len(refs)} masks")
        names = list(case_names) if case_names is not None else [
            (_source(x) if x is not None else None) or f"case {i}" for i, x in enumerate(items)]
        ev = _core.SegmentationEvaluator([m._core for m in ms], bootstrap=bootstrap, seed=seed,
                                         level=level)
        for i, (name, item, ref) in enumerate(zip(names, items, refs)):
            if predictions is not None:
                outs = [label_map(p[i]) for p in preds]
            else:
                image = _as_image(item)
                outs = [m._core.segment(image) for m in ms]
                if isinstance(ref, (str, os.PathLike)):  # a DICOM SEG or a label-map file
                    ev.add(str(name), load_label_map(ref, image, model=ms[0]), outs)
                    continue
            ev.add(str(name), label_map(ref), outs)
        return json.loads(ev.finish())
    if labels is None:
        raise _core.InvalidArgumentError("evaluate: labels (classification) or masks "
                                         "(segmentation) is needed")
    if isinstance(data, np.ndarray) or (len(ms) > 1 and isinstance(data, (list, tuple)) and
                                        len(data) == len(ms) and
                                        all(isinstance(d, np.ndarray) and d.ndim == 2 and
                                            d.shape[1] == len(m.labels)
                                            for d, m in zip(data, ms))):
        arrays = [data] if isinstance(data, np.ndarray) else list(data)
        if len(arrays) != len(ms):
            raise _core.InvalidArgumentError("evaluate: one logits array per model")
    else:
        items = list(data)
        arrays = [m.logits(items, batch_size=batch_size) for m in ms]
    arr = _label_array(ms[0], labels, "evaluate")
    text = _core.evaluate([m._core for m in ms], [np.asarray(a, np.float32) for a in arrays],
                          arr.astype(np.int32), bootstrap=bootstrap, seed=seed, bins=bins,
                          level=level,
                          **_given(threshold=None if threshold is None else float(threshold),
                                   sensitivity=None if sensitivity is None else float(sensitivity)))
    return json.loads(text)
