"""Where the Python tests find the public data ($MEDVISION_DATA, default ../shared/data) and what
they do when a file is missing: skip with the reason on a user's machine, fail where CI=true."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MEDVISION_DATA", ROOT.parent / "shared" / "data"))


def data_or_skip(rel):
    p = DATA / rel
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test data missing in CI: {p}")
        pytest.skip(f"test data not found: {p} (set MEDVISION_DATA)")
    return p
