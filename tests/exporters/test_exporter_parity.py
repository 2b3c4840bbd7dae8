"""Exporter parity: checkpoint -> exporter -> package; the checkpoint's own Python pipeline
(models/exporters/reference.py: PIL/torchvision transforms, pydicom) + torch vs
`medvision classify --json` on real chest X-rays. Random-but-fixed weights (offline).

Env: MV_CLI (the medvision CLI), MEDVISION_DATA (../shared/data). Without them the tests skip,
unless CI=true (then they fail). Run: /usr/bin/python3 -m pytest -q -s tests/exporters
(about 2-3 min of CPU on 2 cores; ctest: `ctest -R exporter_parity`, label model).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
EXPORTERS = REPO / "models" / "exporters"
sys.path.insert(0, str(EXPORTERS))

import export_chexnet  # noqa: E402
import export_torchvision  # noqa: E402
import export_xrv  # noqa: E402
import make_fixture_checkpoint  # noqa: E402
import reference as R  # noqa: E402

exporters = {"export_torchvision.py": export_torchvision, "export_chexnet.py": export_chexnet,
             "export_xrv.py": export_xrv}
torch.set_num_threads(2)

TOL = 1e-4
IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason: str):
    if IN_CI:
        pytest.fail(reason + " (CI=true: required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cli() -> str:
    c = os.environ.get("MV_CLI")
    if not c or not os.access(c, os.X_OK):
        _missing("MV_CLI does not name the built medvision CLI")
    return c


@pytest.fixture(scope="session")
def data() -> Path:
    d = Path(os.environ.get("MEDVISION_DATA", REPO.parent / "shared" / "data"))
    if not (d / "nih14" / "images").is_dir():
        _missing(f"no chest X-ray data under {d} (set MEDVISION_DATA)")
    return d


def pick(data: Path, rels) -> list:
    out = [data / r for r in rels]
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        _missing("missing data: " + ", ".join(missing))
    return out


NIH = ["nih14/images/00000075_000.png", "nih14/images/00000100_000.png",  # 100: RGBA
       "nih14/images/00000211_000.png", "nih14/images/00000284_000.png"]
DICOM8 = [  # 8-bit: MONOCHROME2 DX, MONOCHROME2 JPEG-baseline CR, MONOCHROME1 JPEG-baseline CR
    "cxr-dicom/nccid-nhsx/warehouse-loader/tests/test_data/"
    "1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm",
    "cxr-dicom/torchxrayvision/tests/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
    "cxr-dicom/torchxrayvision/tests/Fake_MONOHR1.dcm"]
DICOM16 = [  # MONOCHROME1 10-bit raw (no file meta), MONOCHROME1 15-bit JPEG 2000 1955x1841
    "cxr-dicom/fo-dicom/CR-MONO1-10-chest.dcm", "cxr-dicom/pydicom-data/RG1_J2KI.dcm"]


def kermany(data: Path, n: int = 1) -> list:
    found = sorted((data / "kermany" / "PNEUMONIA").glob("*.jpeg"))[:n]
    if len(found) < n:
        _missing(f"no Kermany JPEGs under {data / 'kermany'}")
    return found


def run(*args) -> str:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert r.returncode == 0, f"{args[:2]} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="session")
def calibration(data: Path) -> list:
    """NIH images, none of them a test image, that the random networks' BatchNorm statistics
    and logit scale are fitted to (make_fixture_checkpoint.py --calibrate)."""
    found = sorted((data / "nih14" / "images").glob("*.png"))[20:24]
    if len(found) < 4:
        _missing("fewer than 24 NIH images")
    return found


def make_package(tmp: Path, kind: str, fixture_args, export_script: str, export_args,
                 calibration) -> Path:
    """The scripts' main(argv), in this process (one torch import instead of two per package)."""
    ck, pkg = tmp / f"{kind}.pt", tmp / f"pkg-{kind}"
    make_fixture_checkpoint.main([fixture_args[0], str(ck), *fixture_args[1:], "--calibrate",
                                  *map(str, calibration)])
    exporters[export_script].main(["--checkpoint", str(ck), "--out", str(pkg), *export_args])
    return pkg


def medvision_probs(cli: str, pkg: Path, files) -> dict:
    out = run(cli, "classify", "--json", "--model", pkg, "--threads", "2", *files)
    res = {}
    for line in out.splitlines():
        j = json.loads(line)
        assert "error" not in j, j
        ranked = j["labels"]
        probs = [s["probability"] for s in ranked]
        assert probs == sorted(probs, reverse=True), "labels must be sorted by probability"
        res[j["file"]] = {s["label"]: s["probability"] for s in ranked}
    return res


def compare(name: str, cli: str, pkg: Path, files, make_input) -> float:
    manifest = json.loads((pkg / "manifest.json").read_text())
    labels, act = manifest["labels"], manifest["output"]["activation"]
    model = torch.jit.load(str(pkg / "model.pt"), map_location="cpu").eval()
    with torch.no_grad():
        x = torch.stack([make_input(f) for f in files])
        ref = R.probabilities(model(x), act)
    got = medvision_probs(cli, pkg, files)
    worst, per_file = 0.0, []
    for i, f in enumerate(files):
        m = got[str(f)]
        assert sorted(m) == sorted(labels)
        d = max(abs(m[lab] - float(ref[i, k])) for k, lab in enumerate(labels))
        per_file.append((Path(f).name, d))
        worst = max(worst, d)
    print(f"\n[parity] {name}: {len(files)} images, max |p_medvision - p_python| = {worst:.2e}")
    for n, d in per_file:
        print(f"           {d:.2e}  {n}")
    assert worst < TOL, f"{name}: max abs probability diff {worst:.3g} >= {TOL}"
    return worst


def test_torchvision_efficientnet_b0(tmp_path, cli, data, calibration):
    """Seed service format {state_dict, class_names, architecture}: softmax, scale fixed 0..255."""
    pkg = make_package(tmp_path, "tv", ["torchvision", "--architecture", "efficientnet_b0",
                                        "--classes", "NORMAL,PNEUMONIA"],
                       "export_torchvision.py", ["--name", "test-effnet"], calibration)
    files = pick(data, NIH[:3]) + kermany(data) + pick(data, DICOM8[:2])
    compare("torchvision efficientnet_b0 (scale fixed)", cli, pkg, files,
            lambda f: R.torchvision_input(f, "fixed"))


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3"])
def test_torchvision_other_architectures(tmp_path, cli, data, calibration, arch):
    """Other families (and the ambiguous 'mobilenet_v3' name), 3 classes, sigmoid, minmax."""
    pkg = make_package(tmp_path, arch, ["torchvision", "--architecture", arch,
                                        "--classes", "a,b,c"],
                       "export_torchvision.py", ["--multilabel", "--scale", "minmax"], calibration)
    files = pick(data, NIH[:1]) + pick(data, DICOM16[:1])
    compare(f"torchvision {arch} (scale minmax, sigmoid)", cli, pkg, files,
            lambda f: R.torchvision_input(f, "minmax"))


def test_chexnet_module_layout(tmp_path, cli, data, calibration):
    """CheXNet re-implementation layout (module.densenet121.*, old keys); percentile scaling so
    that 10- and 15-bit MONOCHROME1 DICOM work."""
    pkg = make_package(tmp_path, "chexnet", ["chexnet", "--layout", "module"],
                       "export_chexnet.py", ["--scale", "percentile"], calibration)
    files = pick(data, NIH[2:]) + kermany(data) + pick(data, DICOM16)
    compare("chexnet densenet121 (scale percentile, stretch 224)", cli, pkg, files,
            lambda f: R.torchvision_input(f, "percentile"))


def test_chexnet_crop256(tmp_path, cli, data, calibration):
    """torchvision-layout checkpoint; Resize(256) + CenterCrop(224), 8-bit inputs."""
    pkg = make_package(tmp_path, "chexnet256", ["chexnet", "--layout", "torchvision"],
                       "export_chexnet.py", ["--crop", "256"], calibration)
    files = pick(data, NIH[1:2])
    compare("chexnet densenet121 (Resize 256 + CenterCrop 224)", cli, pkg, files,
            lambda f: R.torchvision_input(f, "fixed", crop=256))


def test_xrv_densenet(tmp_path, cli, data, calibration):
    """torchxrayvision DenseNet: 1 channel, [-1024, 1024], resize center_crop 224, 18 labels."""
    pkg = make_package(tmp_path, "xrv", ["xrv"], "export_xrv.py", [], calibration)
    manifest = json.loads((pkg / "manifest.json").read_text())
    assert len(manifest["labels"]) == 18 and manifest["labels"][-1] == "Enlarged Cardiomediastinum"
    assert len(manifest["provenance"]["op_threshs"]) == 18
    files = pick(data, NIH[1:]) + kermany(data) + pick(data, DICOM8[1:])
    compare("xrv densenet121 ([-1024, 1024], center_crop 224)", cli, pkg, files,
            lambda f: R.xrv_input(f))
