#!/usr/bin/env bash
# medvision set-up on Debian 12: installs what is missing, builds, and runs a job.
#
#   scripts/setup.sh quickstart   install + build the library and the CLI only + decode/classify/
#                                 explain the bundled chest X-ray
#   scripts/setup.sh test         install + build + the whole test suite (what CI runs):
#                                 ctest, the Python bindings' pytest suite, ASan/UBSan, TSan,
#                                 format, clang-tidy
#   scripts/setup.sh deps         install only
#   scripts/setup.sh build        install + build (build/)
#
# Idempotent and non-interactive: packages already present are not touched, and apt-get runs
# only when something is missing. Environment:
#   MEDVISION_DATA  public test data (default: ../shared/data beside the checkout)
#   MV_JOBS         parallel build jobs (default: number of cores)
#   MV_SKIP_ASAN=1  skip the AddressSanitizer/UBSan build in `test`
#   MV_SKIP_TSAN=1  skip the ThreadSanitizer build of the thread-stress tests in `test`
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
jobs=${MV_JOBS:-$(nproc)}
# Debian's python3 has the packages below; a python3 earlier on PATH (pyenv, conda) does not.
export MV_PYTHON=${MV_PYTHON:-/usr/bin/python3}
export MEDVISION_DATA=${MEDVISION_DATA:-$(cd "$here/.." && pwd)/shared/data}

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates file binutils
  libtorch-dev libopenblas0-openmp libdnnl-dev libideep-dev
  libdcmtk-dev dcmtk libopenjp2-7-dev libcharls-dev libnifti2-dev libniftiio-dev libznz-dev zlib1g-dev
  libopencv-dev libeigen3-dev libfmt-dev nlohmann-json3-dev libcli11-dev catch2 pybind11-dev
  clang-format clang-tidy-14
  python3 python3-dev python3-numpy python3-pytest python3-pydicom python3-gdcm python3-nibabel
  python3-pil python3-opencv python3-sklearn python3-torch python3-torchvision
  python3-jsonschema python3-setuptools python3-wheel python3-pip python3-venv
  python3-distributed python3-scipy
  orthanc
  dicom3tools
  python3-fastapi python3-uvicorn python3-sqlalchemy python3-jwt python3-argon2 python3-reportlab
  python3-multipart python3-httpx python3-pypdf python3-prometheus-client python3-psycopg2
  python3-selenium chromium chromium-driver postgresql poppler-utils
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

install_deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#PACKAGES[@]} Debian packages present"
    return
  fi
  log "installing ${#missing[@]} missing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

configure_build() {  # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DPython3_EXECUTABLE="$MV_PYTHON" "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

build_options=(-DCMAKE_BUILD_TYPE=Release -DMV_WARNINGS_AS_ERRORS=ON -DMV_BUILD_PYTHON=ON
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)

build() {
  log "building (build/, Release)"
  configure_build build "${build_options[@]}"
}

# The quick start runs the CLI only: the library and the medvision target, not the test suite,
# the benchmarks or the Python module (same build/ and options, so `test` later reuses it).
build_cli() {
  log "building the library and the CLI (build/, Release)"
  cmake -S . -B build -G Ninja -DPython3_EXECUTABLE="$MV_PYTHON" "${build_options[@]}" >/dev/null
  cmake --build build -j "$jobs" --target medvision_cli
}

quickstart() {
  local example=examples/data/cxr-example-full.dcm
  local cli=./build/examples/medvision
  mkdir -p build/quickstart
  log "medvision info $example"
  "$cli" info "$example"
  log "medvision classify $example --model cxr-pneumonia"
  "$cli" classify "$example" --model cxr-pneumonia --threads "$jobs"
  log "medvision explain $example --model cxr-pneumonia (Grad-CAM heat map)"
  "$cli" explain "$example" --model cxr-pneumonia --out build/quickstart/cxr-example-heatmap.png
  log "heat map overlay: build/quickstart/cxr-example-heatmap.png"
}

run_tests() {
  log "unit, C API, conformance and install tests (build/)"
  (cd build && ctest --output-on-failure -j "$jobs")
  log "Python bindings: pytest bindings/python/tests (build/python; wheel + fresh venv; Dask)"
  # The package from the build tree; the wheel test reuses build/ (MV_WHEEL_BUILD_DIR).
  PYTHONPATH="$here/build/python" MV_BUILD_DIR="$here/build" MV_TEST_WHEEL=1 MV_JOBS="$jobs" \
    "$MV_PYTHON" -m pytest -q -p no:cacheprovider bindings/python/tests
  log "reference service: pytest examples/server/tests (SQLite + PostgreSQL, kill -9, Chromium, Dask)"
  PYTHONPATH="$here/build/python:$here/examples/server" MV_BUILD_DIR="$here/build" MV_JOBS="$jobs" \
    "$MV_PYTHON" -m pytest -q -p no:cacheprovider examples/server/tests
  log "DICOM node: examples/dicom-node/tests (a real Orthanc and medvision-node)"
  PYTHONPATH="$here/build/python" MV_BUILD_DIR="$here/build" \
    "$MV_PYTHON" -m pytest -q -p no:cacheprovider examples/dicom-node/tests
  if [ "${MV_SKIP_ASAN:-0}" != 1 ]; then
    log "the same suite under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
    # -O1 and no examples/benchmarks keep this second build short on 2 cores; the tests that
    # drive the CLI (label no-sanitizer) run in the first tree only.
    configure_build build-asan -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" \
      "-DCMAKE_C_FLAGS=-O1 -g1" -DMV_SANITIZE_ADDRESS=ON -DMV_SANITIZE_UNDEFINED=ON \
      -DMV_BUILD_EXAMPLES=OFF -DMV_BUILD_BENCHMARKS=OFF
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      LSAN_OPTIONS=suppressions=$here/tests/lsan.supp:print_suppressions=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --output-on-failure -j "$jobs" -LE 'no-sanitizer')
  fi
  if [ "${MV_SKIP_TSAN:-0}" != 1 ]; then
    log "the thread-stress tests (label threads) under ThreadSanitizer (build-tsan/)"
    # Only the stress tests' targets, -O1, no examples/benchmarks/Python (docs/testing.md); they
    # run one after the other, each with 8 threads of its own.
    cmake -S . -B build-tsan -G Ninja -DPython3_EXECUTABLE="$MV_PYTHON" -DCMAKE_BUILD_TYPE=None \
      "-DCMAKE_CXX_FLAGS=-O1 -g1" "-DCMAKE_C_FLAGS=-O1 -g1" -DMV_SANITIZE_THREAD=ON \
      -DMV_BUILD_EXAMPLES=OFF -DMV_BUILD_BENCHMARKS=OFF >/dev/null
    cmake --build build-tsan -j "$jobs" --target threads_model threads_io
    (cd build-tsan && \
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$here/tests/tsan.supp \
      ctest --output-on-failure -L threads)
  fi
  log "clang-format check"
  scripts/check_format.sh
  log "clang-tidy (.clang-tidy) over src/ and examples/cli"
  MV_JOBS="$jobs" scripts/clang_tidy.sh build
}

cmd=${1:-}
case "$cmd" in
  deps) install_deps ;;
  build) install_deps; build ;;
  quickstart) install_deps; build_cli; quickstart ;;
  test) install_deps; build; run_tests ;;
  *) sed -n '2,15p' "$0"; exit 1 ;;
esac
