"""examples/python: the serial CSV classifier and the Dask distributed scorer give identical
CSVs (a local cluster on 127.0.0.1 with 2 worker processes, each loading the model once).

CI runs them on 48 Kermany images (24 per class) plus one non-image file; the whole Kermany
training folder (5,216 images) was scored the same way by the example scripts, with the result
recorded in docs/python.md.
"""
import csv
import os
import subprocess
import sys

import pytest

from conftest import ROOT, kermany

EXAMPLES = ROOT / "examples" / "python"


def test_dask_matches_serial(tmp_path):
    pytest.importorskip("distributed", reason="python3-distributed is not installed")
    folder = tmp_path / "studies"
    for label in ("NORMAL", "PNEUMONIA"):
        (folder / label).mkdir(parents=True)
        for p in kermany(24, label):
            os.symlink(p, folder / label / os.path.basename(p))
    (folder / "README.txt").write_text("not an image\n")
    env = dict(os.environ)
    common = ["--model", "cxr-pneumonia", "--threads", "1", "--batch", "8"]
    serial = subprocess.run(
        [sys.executable, str(EXAMPLES / "classify_folder.py"), str(folder), *common, "--out",
         str(tmp_path / "serial.csv")], capture_output=True, text=True, env=env)
    assert serial.returncode == 1, serial.stderr  # 1: the README is reported as an error row
    dask = subprocess.run(
        [sys.executable, str(EXAMPLES / "dask_score.py"), str(folder), *common, "--chunk", "16",
         "--workers", "2", "--out", str(tmp_path / "dask.csv")],
        capture_output=True, text=True, env=env, timeout=300)
    assert dask.returncode == 1, dask.stdout + dask.stderr
    assert "on 2 workers" in dask.stdout
    assert dask.stdout.count("model loaded 1 time(s)") == 2, dask.stdout
    a = (tmp_path / "serial.csv").read_text()
    assert a == (tmp_path / "dask.csv").read_text()
    rows = list(csv.DictReader(a.splitlines()))
    assert len(rows) == 49
    errors = [r for r in rows if r["error"]]
    assert [r["path"] for r in errors] == ["README.txt"]
    assert errors[0]["error"].startswith("MV_ERR_UNSUPPORTED_FORMAT")
    positive = {r["path"].split("/")[0]: 0 for r in rows if r["path"] != "README.txt"}
    for r in rows:
        if r["positive"] == "Pneumonia":
            positive[r["path"].split("/")[0]] += 1
    assert positive["PNEUMONIA"] > positive["NORMAL"]
