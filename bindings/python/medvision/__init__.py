"""medvision: inference on medical images (DICOM, NIfTI, PNG/JPEG/TIFF) with LibTorch models.

Results support clinicians and never replace them: **not for diagnostic use**.

    >>> import medvision
    >>> img = medvision.load_image("study/IM0001.dcm")
    >>> img.array.shape                       # (channels, depth, height, width), no copy
    >>> with medvision.Model("cxr-pneumonia") as model:
    ...     result = model.classify(img)
    ...     result.top.label, result.top.probability

Rules: numpy outputs are read-only views of the library's buffers (no copy); the GIL is
released around decoding, inference, segmentation, explanation and calibration; every failure
raises a subclass of MedvisionError whose message names the file involved. See
bindings/README.md.
"""
from __future__ import annotations

import enum
import logging

from . import _core
from ._core import (
    AbiMismatchError,
    CalibrateOptions,
    CancelledError,
    CorruptDataError,
    DeviceError,
    EvaluateOptions,
    ExplainOptions,
    FileFormatError,
    Heatmap,
    Image,
    InternalError,
    InvalidArgumentError,
    LoadOptions,
    MedvisionError,
    MedvisionFileNotFoundError,
    MedvisionIOError,
    MedvisionNotImplementedError,
    MedvisionOutOfMemoryError,
    ModelError,
    ModelOptions,
    SegmentOptions,
    ShapeMismatchError,
    UnknownError,
    UnsupportedFormatError,
    Window,
    list_models,
)
from ._model import Model, calibrate, evaluate, from_numpy, load_image, load_series, stack
from ._model import load_label_map
from ._results import (
    refer_rule_text,
    CalibrationReport,
    Classification,
    DriftLabel,
    DriftReport,
    Explanation,
    LabelScore,
    Region,
    Segmentation,
)

#: The linked libmedvision's version (the C library's mv_version_string()).
__version__: str = _core.version()


class Status(enum.IntEnum):
    """mv_status values (pinned forever; MedvisionError.status compares equal to them)."""

    OK = 0
    INVALID_ARGUMENT = 1
    OUT_OF_MEMORY = 2
    IO = 3
    UNSUPPORTED_FORMAT = 4
    CORRUPT_DATA = 5
    MODEL = 6
    DEVICE = 7
    SHAPE_MISMATCH = 8
    ABI_MISMATCH = 9
    CANCELLED = 10
    NOT_IMPLEMENTED = 11
    INTERNAL = 12
    UNKNOWN = 13


_LOG_LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)
_logger = logging.getLogger("medvision")


def _to_logging(level: int, message: str) -> None:
    _logger.log(_LOG_LEVELS[min(max(level, 0), 3)], "%s", message)


def enable_logging(level: int = logging.WARNING) -> None:
    """Routes the library's log messages (decode, model-load and preprocessing warnings) to the
    ``logging`` logger "medvision". The library never prints on its own."""
    native = 0 if level <= logging.DEBUG else 1 if level <= logging.INFO else \
        2 if level <= logging.WARNING else 3
    _core.set_log_handler(_to_logging, native)


def disable_logging() -> None:
    _core.set_log_handler(None)


def _at_exit() -> None:
    # A library thread must not call into a finalising interpreter.
    _core.set_log_handler(None)


import atexit as _atexit  # noqa: E402

_atexit.register(_at_exit)

__all__ = [
    "refer_rule_text",
    "evaluate",
    "__version__", "Status", "Image", "Window", "Heatmap", "Model", "load_image", "load_series",
    "load_label_map",
    "from_numpy", "stack", "calibrate", "list_models", "enable_logging", "disable_logging",
    "Classification", "LabelScore", "Segmentation", "Region", "Explanation", "DriftReport", "DriftLabel",
    "CalibrationReport", "CalibrateOptions", "MedvisionError", "InvalidArgumentError", "MedvisionOutOfMemoryError",
    "MedvisionIOError", "MedvisionFileNotFoundError", "FileFormatError", "UnsupportedFormatError",
    "CorruptDataError", "ModelError", "DeviceError", "ShapeMismatchError", "AbiMismatchError",
    "CancelledError", "MedvisionNotImplementedError", "InternalError", "UnknownError",
    "LoadOptions", "ModelOptions", "SegmentOptions", "ExplainOptions", "EvaluateOptions",
]
