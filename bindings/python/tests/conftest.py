"""Shared fixtures for the medvision Python tests.

The package is imported from the build tree (PYTHONPATH=build/python, as scripts/setup.sh test
sets it) or from an installed wheel. Data come from MEDVISION_DATA (default ../shared/data beside
the checkout); tests that need absent data SKIP with the reason, and FAIL when CI=true.
"""
import io
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("MV_BUILD_DIR", ROOT / "build"))
DATA = Path(os.environ.get("MEDVISION_DATA", ROOT.parent / "shared" / "data"))
CLI = Path(os.environ.get("MV_CLI", BUILD / "examples" / "medvision"))
CAPI_CLASSIFY = BUILD / "bindings" / "python" / "capi_classify"
EXAMPLE_DCM = ROOT / "examples" / "data" / "cxr-example.dcm"


def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


def data_path(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        missing(f"test data not found: {p} (set MEDVISION_DATA)")
    return p


def tool(path: Path) -> Path:
    if not path.exists():
        missing(f"{path} not built (build the tree first)")
    return path


def kermany(n: int, label: str = "NORMAL"):
    folder = data_path(f"kermany/{label}")
    return sorted(str(p) for p in folder.glob("*.jpeg"))[:n]


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def mv():
    import medvision

    return medvision


@pytest.fixture(scope="session")
def pneumonia(mv):
    """cxr-pneumonia (calibrated, one sigmoid label), loaded once for the session."""
    with mv.Model("cxr-pneumonia") as m:
        yield m


@pytest.fixture(scope="session")
def example_image(mv):
    return mv.load_image(EXAMPLE_DCM)
