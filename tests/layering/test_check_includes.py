#!/usr/bin/env python3
"""Tests of check_includes.py on small trees written to a temporary folder: each planted bad
include must fail the check with the file, the line, the include and the edge in the message;
allowed includes and commented-out ones must pass. Plain unittest (no pytest needed)."""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_includes.py")


class CheckIncludes(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        # A tree shaped like the real one: every module folder, a public header, one header each.
        for m in ("common", "io", "preprocess", "infer", "calibrate", "segment", "model", "explain",
                  "capi"):
            self.write(f"src/{m}/{m}.hpp", "#pragma once\n#include <vector>\n")
        self.write("include/medvision/medvision.h", "#include <stddef.h>\n#include <stdint.h>\n")
        self.write("src/io/load.cpp", '#include "io/io.hpp"\n#include "common/common.hpp"\n'
                   '#include <dcmtk/dcmdata/dcdeftag.h>\n#include <Eigen/Core>\n'
                   '#include <fmt/format.h>\n#include "medvision/medvision.h"\n')
        self.write("src/io/io.hpp", "#pragma once\n")
        self.write("src/infer/runtime.cpp", "#include <torch/script.h>\n#include <ATen/Context.h>\n")
        self.write("src/capi/capi_core.cpp", '#include "explain/explain.hpp"\n'
                   '#include "model/model.hpp"\n#include "io/io.hpp"\n')

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text))

    def run_checker(self):
        r = subprocess.run([sys.executable, CHECKER, self.root], capture_output=True, text=True,
                           timeout=60)
        return r.returncode, r.stdout + r.stderr

    def assert_fails_with(self, *parts):
        rc, out = self.run_checker()
        self.assertEqual(rc, 1, out)
        line = next((l for l in out.splitlines() if all(p in l for p in parts)), None)
        self.assertIsNotNone(line, f"no line with {parts} in:\n{out}")
        return out

    def test_allowed_tree_passes(self):
        rc, out = self.run_checker()
        self.assertEqual(rc, 0, out)
        self.assertIn("every include edge allowed", out)

    def test_lower_module_including_a_higher_one_fails(self):
        self.write("src/io/bad.cpp", '#include <string>\n#include "model/model.hpp"\n')
        self.assert_fails_with("src/io/bad.cpp:2:", '#include "model/model.hpp"',
                               "forbidden edge io -> model", "io may include: common")

    def test_peer_modules_may_not_include_each_other(self):
        self.write("src/preprocess/bad.hpp", '#pragma once\n#include "io/io.hpp"\n')
        self.assert_fails_with("src/preprocess/bad.hpp:2:", "forbidden edge preprocess -> io")

    def test_common_includes_nothing_above_it(self):
        self.write("src/common/bad.cpp", '#include "capi/capi.hpp"\n')
        self.assert_fails_with("src/common/bad.cpp:1:", "forbidden edge common -> capi",
                               "common may include: only itself")

    def test_relative_include_across_modules_fails(self):
        self.write("src/segment/bad.cpp", '#include "../explain/explain.hpp"\n')
        self.assert_fails_with("src/segment/bad.cpp:1:", "forbidden edge segment -> explain")

    def test_torch_outside_infer_fails(self):
        self.write("src/model/bad.cpp", "#include <vector>\n\n#include <torch/script.h>\n")
        self.assert_fails_with("src/model/bad.cpp:3:", "#include <torch/script.h>",
                               "forbidden edge model -> torch", "only in src/infer")

    def test_dcmtk_outside_io_fails(self):
        self.write("src/capi/bad.cpp", "#  include <dcmtk/dcmdata/dcfilefo.h>\n")
        self.assert_fails_with("src/capi/bad.cpp:1:", "forbidden edge capi -> dcmtk")

    def test_public_header_with_a_library_fails(self):
        for i, inc in enumerate(("<Eigen/Core>", "<fmt/format.h>", "<dcmtk/dcmdata/dctk.h>",
                                 "<opencv2/core.hpp>", "<nlohmann/json.hpp>",
                                 "<torch/script.h>")):
            self.write(f"include/medvision/bad{i}.hpp", f"#pragma once\n#include {inc}\n")
        out = self.assert_fails_with("include/medvision/bad0.hpp:2:", "public header -> Eigen")
        for i, lib in enumerate(("Eigen", "fmt", "dcmtk", "opencv2", "nlohmann", "torch")):
            self.assertIn(f"include/medvision/bad{i}.hpp:2:", out)
            self.assertIn(f"public header -> {lib}", out)

    def test_public_header_including_src_fails(self):
        self.write("include/medvision/bad.hpp", '#pragma once\n#include "common/common.hpp"\n')
        self.assert_fails_with("include/medvision/bad.hpp:2:", "public header -> src/")

    def test_commented_out_include_is_ignored(self):
        self.write("src/io/ok.cpp", '// #include "model/model.hpp"\n/*\n#include <torch/script.h>\n'
                   '*/\n#include "io/io.hpp"\n')
        rc, out = self.run_checker()
        self.assertEqual(rc, 0, out)

    def test_unknown_module_folder_fails(self):
        self.write("src/newmod/x.cpp", '#include "common/common.hpp"\n')
        self.assert_fails_with("src/newmod/", "layering table does not know")

    def test_real_tree_with_a_planted_include_fails(self):
        # The repository's own src/ and include/ pass; the same tree with one bad include does not.
        import shutil
        repo = os.path.abspath(os.path.join(os.path.dirname(CHECKER), "..", ".."))
        copy = os.path.join(self.root, "copy")
        for part in ("src", "include"):
            shutil.copytree(os.path.join(repo, part), os.path.join(copy, part))
        self.root, original = copy, self.root
        try:
            rc, out = self.run_checker()
            self.assertEqual(rc, 0, out)
            with open(os.path.join(copy, "src", "io", "load.cpp"), "a", encoding="utf-8") as f:
                f.write('#include "model/model.hpp"\n')
            self.assert_fails_with("src/io/load.cpp:", '#include "model/model.hpp"',
                                   "forbidden edge io -> model")
        finally:
            self.root = original

    def test_every_problem_is_listed(self):
        self.write("src/io/bad.cpp", '#include "model/model.hpp"\n#include "capi/capi.hpp"\n')
        out = self.assert_fails_with("io -> model")
        self.assertIn("io -> capi", out)
        self.assertIn("2 forbidden include edge(s)", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
