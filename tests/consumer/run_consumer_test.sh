#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, then builds examples/c/minimal.c against it
# twice: with find_package(medvision) and with pkg-config. Both programs must run.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null

# 1. CMake package.
cmake -S "$source_dir/tests/consumer" -B "$work/cmake-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DMV_EXAMPLES_DIR="$source_dir/examples" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
libdir=$(dirname "$(find "$work/prefix" -name 'libmedvision.so' | head -n1)")
LD_LIBRARY_PATH="$libdir" "$work/cmake-build/minimal" /no/such/file.dcm && exit 1 || true
# The program prints the error and exits 1 for a missing file: run it on a real image instead
# when the caller gives one.
if [ -n "${3:-}" ]; then LD_LIBRARY_PATH="$libdir" "$work/cmake-build/minimal" "$3"; fi

# 2. pkg-config.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -pedantic -Wall -Werror -o "$work/minimal-pc" "$source_dir/examples/c/minimal.c" \
  $(pkg-config --cflags --libs medvision)
if [ -n "${3:-}" ]; then LD_LIBRARY_PATH="$libdir" "$work/minimal-pc" "$3"; fi
# The installed library carries its SONAME and only mv_ symbols.
readelf -d "$libdir/libmedvision.so" | grep -q "SONAME.*libmedvision.so.0"
echo "consumer builds (find_package, pkg-config) OK"
