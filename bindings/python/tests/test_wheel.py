"""`pip wheel .` at the repository root builds a wheel offline with Debian's pip, setuptools and
wheel; installed into a fresh virtual environment it imports and classifies; `pip install .`
works there too.

The venv is made with --system-site-packages: Debian's pip refuses to install outside one (PEP
668), and numpy comes from Debian (python3-numpy), not from PyPI, which is unreachable here.
The CMake tree of MV_BUILD_DIR is reused (MV_WHEEL_BUILD_DIR) so that this takes seconds;
scripts/setup.sh test runs it (MV_TEST_WHEEL=1). Without that variable it is skipped.
"""
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import BUILD, EXAMPLE_DCM, ROOT

pytestmark = pytest.mark.skipif(os.environ.get("MV_TEST_WHEEL") != "1",
                                reason="set MV_TEST_WHEEL=1 (scripts/setup.sh test does)")


def run(cmd, **kw):
    env = dict(os.environ, MV_WHEEL_BUILD_DIR=str(BUILD), PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)  # the venv must find the installed package, not the build tree
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, **kw)


def test_wheel_builds_offline_and_imports_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), "."], cwd=ROOT)
    (wheel,) = dist.glob("medvision-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "medvision/__init__.py" in names and "medvision/_core.pyi" in names
    assert "medvision/py.typed" in names
    assert any(n.startswith("medvision/_core.") and n.endswith(".so") for n in names)
    assert "medvision/libmedvision.so.0" in names  # carried; LibTorch is the system's

    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    py = str(venv / "bin" / "python")
    run([py, "-m", "pip", "install", "--no-deps", str(wheel)], cwd=tmp_path)
    probe = ("import medvision, sys; "
             "m = medvision.Model(sys.argv[1]); r = m.classify(sys.argv[2]); "
             "print(medvision.__file__); print(medvision.__version__, r.top.label)")
    out = run([py, "-c", probe, str(ROOT / "models" / "cxr-pneumonia" / "package"),
               str(EXAMPLE_DCM)], cwd=tmp_path).stdout.split("\n")
    assert out[0].startswith(str(venv)), out  # the installed copy, not the source tree
    assert out[1].startswith("0.") and out[1].endswith("Pneumonia")

    # PEP 517 without isolation, and `pip install .` straight from the checkout.
    run([py, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--use-pep517", "-w",
         str(tmp_path / "dist517"), "."], cwd=ROOT)
    assert list((tmp_path / "dist517").glob("medvision-*.whl"))
    run([py, "-m", "pip", "install", "--no-deps", "--force-reinstall", "."], cwd=ROOT)
    out = run([py, "-c", "import medvision; print(medvision.__file__)"], cwd=tmp_path).stdout
    assert out.startswith(str(venv))
