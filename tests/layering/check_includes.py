#!/usr/bin/env python3
"""Checks the #include edges of the library against the layering (docs/architecture.md).

Every module folder under src/ has src/ on its include path, so the compiler lets any module
include any other; this script is what enforces the layering. It reads every .cpp / .hpp / .h
under src/ and include/medvision/ and fails, naming the file, the line, the include and the
rule, when:
  - a module includes a header of a module it may not use (ALLOWED below; a module may always
    include its own headers, and every module may include the public include/medvision/);
  - a file outside src/infer includes LibTorch (torch/, ATen/, c10/, caffe2/);
  - a third-party library's headers appear outside the modules that link it (THIRD_PARTY);
  - a public header (include/medvision/) includes Eigen, fmt, DCMTK, OpenCV, nlohmann, NIfTI,
    OpenJPEG, zlib or LibTorch, or any src/ header.

Usage: check_includes.py [ROOT]   (ROOT: the repository, default: two folders up)
Exit status 0 when every edge is allowed, 1 otherwise (one line per forbidden edge).
"""

import os
import re
import sys

# The layering: common -> io / preprocess / infer / calibrate -> segment -> model -> explain ->
# capi. A module may include the headers of the modules listed for it, and no others.
ALLOWED = {
    "common": set(),
    "io": {"common"},
    "preprocess": {"common"},
    "infer": {"common"},
    "calibrate": {"common"},
    "segment": {"common", "io", "preprocess", "infer", "calibrate"},
    "model": {"common", "io", "preprocess", "infer", "calibrate", "segment"},
    "explain": {"common", "io", "preprocess", "infer", "calibrate", "segment", "model"},
    "capi": {"common", "io", "preprocess", "infer", "calibrate", "segment", "model", "explain"},
}

# Third-party headers (by the include's first path component, or the file name for single
# headers) and the modules that may include them. Eigen and fmt may be used by every module's
# sources and private headers, never by the public headers.
TORCH = ("torch", "ATen", "c10", "caffe2", "torch.h")
THIRD_PARTY = [
    (TORCH, {"infer"}, "LibTorch is included only in src/infer"),
    (("dcmtk",), {"io"}, "DCMTK is included only in src/io"),
    (("nifti1.h", "nifti2.h", "nifti1_io.h", "nifti2_io.h", "nifti2"), {"io"},
     "niftilib is included only in src/io"),
    (("openjpeg.h", "openjpeg-2.5", "openjpeg-2.4"), {"io"}, "OpenJPEG is included only in src/io"),
    (("charls",), {"io"}, "CharLS is included only in src/io"),
]
PUBLIC_FORBIDDEN = ("Eigen", "unsupported", "fmt", "dcmtk", "opencv2", "opencv4", "nlohmann",
                    "nifti1.h", "nifti2.h", "nifti1_io.h", "nifti2_io.h", "nifti2", "openjpeg.h",
                    "zlib.h", "charls") + TORCH

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
SOURCE_EXTENSIONS = (".cpp", ".hpp", ".h", ".cc", ".hh", ".cxx", ".inl")


def include_lines(path):
    """(line number, delimiter, target) for each #include outside comments."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    # Blank out block comments, keeping their line breaks so that line numbers stay right.
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        m = INCLUDE.match(line)
        if m:
            out.append((number, m.group(1), m.group(2)))
    return out


def module_of_include(target, delim, including_dir, src):
    """The src/ module an include names ("io/io.hpp", or "x.hpp" beside the including file),
    or None when it is not a header under src/."""
    candidates = [os.path.join(src, target)]
    if delim == '"':
        candidates.insert(0, os.path.join(including_dir, target))
    for c in candidates:
        rel = os.path.relpath(os.path.normpath(c), src)
        if rel.startswith("..") or os.sep not in rel:
            continue
        first = rel.split(os.sep, 1)[0]
        if first in ALLOWED and (os.path.exists(c) or c == candidates[-1]):
            return first
    return None


def spelled(delim, target):
    return f"<{target}>" if delim == "<" else f'"{target}"'


def first_component(target):
    return target.split("/", 1)[0]


def check(root):
    src = os.path.join(root, "src")
    public = os.path.join(root, "include", "medvision")
    problems = []
    files = 0
    for folder in sorted(os.listdir(src)):
        module_dir = os.path.join(src, folder)
        if not os.path.isdir(module_dir):
            continue
        if folder not in ALLOWED:
            problems.append(f"src/{folder}/: a module folder the layering table does not know "
                            f"(add it to ALLOWED in tests/layering/check_includes.py and to "
                            f"docs/architecture.md)")
            continue
        for dirpath, _, names in os.walk(module_dir):
            for name in sorted(names):
                if not name.endswith(SOURCE_EXTENSIONS):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                files += 1
                for number, delim, target in include_lines(path):
                    where = f"{rel}:{number}: #include {spelled(delim, target)}"
                    to = module_of_include(target, delim, dirpath, src)
                    if to is not None:
                        if to != folder and to not in ALLOWED[folder]:
                            allowed = ", ".join(sorted(ALLOWED[folder])) or "only itself"
                            problems.append(f"{where}: forbidden edge {folder} -> {to} "
                                            f"({folder} may include: {allowed})")
                        continue
                    head = first_component(target)
                    for names_, modules, rule in THIRD_PARTY:
                        if (head in names_ or target in names_) and folder not in modules:
                            problems.append(f"{where}: forbidden edge {folder} -> {head} ({rule})")
    if os.path.isdir(public):
        for name in sorted(os.listdir(public)):
            path = os.path.join(public, name)
            if not name.endswith(SOURCE_EXTENSIONS) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, root)
            files += 1
            for number, delim, target in include_lines(path):
                where = f"{rel}:{number}: #include {spelled(delim, target)}"
                head = first_component(target)
                if head in PUBLIC_FORBIDDEN or target in PUBLIC_FORBIDDEN:
                    problems.append(f"{where}: forbidden edge public header -> {head} "
                                    f"(include/medvision/ includes no third-party library)")
                elif module_of_include(target, delim, os.path.dirname(path), src):
                    problems.append(f"{where}: forbidden edge public header -> src/ "
                                    f"(include/medvision/ is self-contained)")
    return files, problems


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..", "..")
    root = os.path.abspath(root)
    if not os.path.isdir(os.path.join(root, "src")):
        print(f"check_includes: {root} has no src/ folder", file=sys.stderr)
        return 2
    files, problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_includes: {len(problems)} forbidden include edge(s) in {files} files",
              file=sys.stderr)
        return 1
    print(f"check_includes: {files} files, every include edge allowed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
