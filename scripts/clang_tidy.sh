#!/usr/bin/env bash
# clang-tidy (Debian's clang-tidy-14) over the library (src/) and the CLI (examples/cli/) with the
# checks in .clang-tidy, from the compile commands of a configured build (default build/, which
# scripts/setup.sh configures with CMAKE_EXPORT_COMPILE_COMMANDS). Any finding fails.
#
#   scripts/clang_tidy.sh [BUILD_DIR] [FILE...]     (MV_JOBS: parallel jobs, default: all cores)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
build=${1:-build}
shift || true
db="$build/compile_commands.json"
if [ ! -f "$db" ]; then
  echo "clang_tidy.sh: $db is missing: configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON" >&2
  exit 2
fi
tidy=$(command -v clang-tidy-14 || command -v clang-tidy || true)
runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
if [ -z "$tidy" ] || [ -z "$runner" ]; then
  echo "clang_tidy.sh: clang-tidy-14 is not installed (apt-get install clang-tidy-14)" >&2
  exit 2
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'src/*.cpp' 'examples/cli/*.cpp')
fi
start=$SECONDS
# GCC-only flags in the compile commands are not errors for clang.
set +e
"$runner" -clang-tidy-binary "$tidy" -p "$build" -j "${MV_JOBS:-$(nproc)}" -quiet \
  -extra-arg=-Wno-unknown-warning-option -extra-arg=-Wno-ignored-optimization-argument \
  "${files[@]/#/$here/}" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' |
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^(/usr/bin/)?clang-tidy(-14)? .*-quiet' |
  tee "$build/clang-tidy.log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || echo "clang_tidy.sh: run-clang-tidy exited with $status"
if grep -q -E '(warning|error): ' "$build/clang-tidy.log"; then status=1; fi
echo "clang-tidy: ${#files[@]} files, $((SECONDS - start)) s, $([ "$status" -eq 0 ] && echo clean || echo 'findings above')"
exit "$status"
