"""Shared code for the medvision reference-model training and export scripts.

GPU-side rule: everything imported by a train.py (packio, preprocess, nets, aug, train_utils,
metrics' numpy part, infer) depends only on torch + numpy + the Python standard library.
PIL, nibabel, sklearn and scipy are imported lazily, only by the packing / evaluation tools
that run on the workstation.
"""
import os
import sys
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = MODELS_DIR.parent


def data_root() -> Path:
    """MEDVISION_DATA, default ../shared/data relative to the repository."""
    env = os.environ.get("MEDVISION_DATA")
    return Path(env) if env else (REPO_DIR.parent / "shared" / "data").resolve()


def devdata_dir() -> Path:
    return REPO_DIR / ".devdata"


def log(*args):
    print(*args, flush=True)
    sys.stdout.flush()
