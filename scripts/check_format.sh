#!/usr/bin/env bash
# Fails when any C/C++ source differs from clang-format's output (.clang-format at the root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp' | grep -v '^third_party/')
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "needs clang-format: $f"
    bad=1
  fi
done
[ $bad -eq 0 ] && echo "clang-format: ${#files[@]} files clean"
exit $bad
