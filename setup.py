"""Builds the medvision Python wheel (bindings/python) with CMake, offline, from Debian packages.

    pip wheel --no-deps -w dist .     # or: pip install .   (see bindings/README.md)

CMake builds libmedvision and the pybind11 extension medvision._core (MV_BUILD_PYTHON=ON, in
build-wheel/ or in $MV_WHEEL_BUILD_DIR to reuse an existing tree); `cmake --install --component
python` stages them with an $ORIGIN rpath, and both go into the wheel's medvision/ folder.
LibTorch, DCMTK, OpenCV and the NIfTI libraries are NOT packed: the wheel uses the system's
(Debian 12 packages, as for the C library), so it is a wheel for this platform, not manylinux.

There is deliberately no pyproject.toml: with one, pip builds in an isolated environment and
tries to download setuptools, which fails offline. Without it, Debian's pip 23 builds with the
installed setuptools + wheel. `pip wheel --no-build-isolation --use-pep517 .` works too.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(ROOT, "include", "medvision", "medvision.h")) as f:
        text = f.read()
    parts = [re.search(rf"#define MV_VERSION_{p} (\d+)", text).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        reuse = os.environ.get("MV_WHEEL_BUILD_DIR")
        build_dir = os.path.abspath(reuse or os.path.join(ROOT, "build-wheel"))
        jobs = os.environ.get("MV_JOBS", str(os.cpu_count() or 2))
        configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DMV_BUILD_PYTHON=ON"]
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            # A tree already configured keeps its interpreter (it must be this Python's version:
            # a venv's python is the same interpreter as the one it was made from).
            configure += ["-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                          f"-DPython3_EXECUTABLE={sys.executable}"]
            if not reuse:  # a tree of its own needs only the library and the extension
                configure += ["-DMV_BUILD_TESTS=OFF", "-DMV_BUILD_EXAMPLES=OFF",
                              "-DMV_BUILD_BENCHMARKS=OFF"]
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "medvision_python",
                               "-j", jobs])
        with tempfile.TemporaryDirectory() as stage:
            subprocess.check_call(["cmake", "--install", build_dir, "--component", "python",
                                   "--prefix", stage])
            staged = os.path.join(stage, "medvision")
            dest = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
            os.makedirs(dest, exist_ok=True)
            for name in os.listdir(staged):
                src = os.path.join(staged, name)
                if name.startswith("_core.") and name.endswith(".so"):
                    shutil.copyfile(src, self.get_ext_fullpath(ext.name))
                elif re.fullmatch(r"libmedvision\.so\.\d+", name):
                    # The SONAME link, dereferenced: a wheel (zip) cannot hold symlinks, and
                    # _core needs only this name.
                    shutil.copyfile(os.path.realpath(src), os.path.join(dest, name))


setup(
    name="medvision",
    version=read_version(),
    description="Inference on medical images (DICOM, NIfTI, PNG/JPEG) with LibTorch models: "
                "Python bindings of libmedvision. Not for diagnostic use.",
    long_description=open(os.path.join(ROOT, "bindings", "README.md")).read(),
    long_description_content_type="text/markdown",
    packages=["medvision"],
    package_dir={"": "bindings/python"},
    package_data={"medvision": ["_core.pyi", "py.typed"]},
    ext_modules=[CMakeExtension("medvision._core")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.9",
    install_requires=["numpy"],
    zip_safe=False,
    # setuptools' default build/ is CMake's build tree here.
    options={"build": {"build_base": "build-py"}},
)
