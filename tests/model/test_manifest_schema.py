"""The JSON Schema of the manifest (docs/model-package.schema.json) is itself valid, every bundled
package conforms to it, and it rejects the mistakes the C++ validator rejects."""
import copy
import json
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "model-package.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PACKAGES = sorted(p.parent for p in (ROOT / "models").glob("*/package/manifest.json"))


def test_schema_is_valid():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_there_are_bundled_packages():
    assert len(PACKAGES) >= 5


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.parent.name)
def test_bundled_package_conforms(pkg):
    VALIDATOR.validate(json.loads((pkg / "manifest.json").read_text()))


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("name"),
    lambda m: m.update(task="detection"),
    lambda m: m.update(format_version=2),
    lambda m: m.update(lables=["x"]),
    lambda m: m["output"].update(activation="relu"),
    lambda m: m.update(sha256="abc"),
    lambda m: m["preprocess"].append({"op": "sharpen"}),
    lambda m: m.update(labels=["A", "A"]),
    lambda m: m.update(inference={"graph": "fast"}),
])
def test_schema_rejects_mistakes(edit):
    m = copy.deepcopy(json.loads((ROOT / "models/cxr-pneumonia/package/manifest.json").read_text()))
    edit(m)
    assert not VALIDATOR.is_valid(m)
