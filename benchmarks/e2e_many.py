#!/usr/bin/python3
"""e2e_many: issue 17's end-to-end comparison. `medvision classify` over 48 chest X-ray DICOMs of
2048x2048, 12 bits stored, in three transfer syntaxes, against the Python program a user would
write (`e2e_many_peer.py`), whole processes, run alternately; reports wall time, CPU time and
peak RSS (ru_maxrss from wait4) per run, the medians and the ratios, and the machine's load.
Also one file alone (batch-1 latency of a whole process). Tests never assert timings.

  e2e_many.py make [--out DIR] [--count 48]       # the inputs (never committed)
  e2e_many.py run  [--build build] [--data DIR] [--rounds 3] [--batch 16] [--threads 2]
                   [--syntaxes explicit,jpegls,j2k] [--out benchmarks/results/e2e_many.json]

Inputs (`make`): the first `count` PNGs of $MEDVISION_DATA/nih14/images (320x320, 8 bit) upscaled
bicubically to 2048x2048, mapped to 0..4095 (12 bits stored in 16 allocated, MONOCHROME2, DX),
written by pydicom as Explicit VR Little Endian, then re-encoded losslessly with GDCM's Python
bindings as JPEG-LS (1.2.840.10008.1.2.4.80) and JPEG 2000 (1.2.840.10008.1.2.4.90); each
compressed file is checked pixel-identical to the uncompressed one with pydicom.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = "/usr/bin/python3"
SYNTAXES = {"explicit": "1.2.840.10008.1.2.1", "jpegls": "1.2.840.10008.1.2.4.80",
            "j2k": "1.2.840.10008.1.2.4.90"}


def data_root() -> Path:
    return Path(os.environ.get("MEDVISION_DATA", REPO.parent / "shared" / "data"))


def make(out: Path, count: int) -> None:
    import gdcm
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    src = sorted((data_root() / "nih14" / "images").glob("*.png"))[:count]
    if len(src) < count:
        sys.exit(f"e2e_many: {len(src)} PNGs under {data_root() / 'nih14' / 'images'}, need {count}")
    for name in SYNTAXES:
        (out / name).mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    for i, png in enumerate(src):
        im = Image.open(png).convert("F").resize((2048, 2048), Image.BICUBIC)
        px = np.clip(np.rint(np.asarray(im) * (4095.0 / 255.0)), 0, 4095).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
        ds.Modality, ds.PatientName, ds.PatientID = "DX", "", ""
        ds.Rows = ds.Columns = 2048
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
        ds.PixelData = px.tobytes()
        ds.is_little_endian, ds.is_implicit_VR = True, False
        plain = out / "explicit" / f"cxr{i:03d}.dcm"
        ds.save_as(str(plain), write_like_original=False)
        for name in ("jpegls", "j2k"):
            reader = gdcm.ImageReader()
            reader.SetFileName(str(plain))
            if not reader.Read():
                sys.exit(f"e2e_many: GDCM cannot read {plain}")
            change = gdcm.ImageChangeTransferSyntax()
            change.SetTransferSyntax(gdcm.TransferSyntax(
                gdcm.TransferSyntax.JPEGLSLossless if name == "jpegls" else gdcm.TransferSyntax.JPEG2000Lossless))
            change.SetInput(reader.GetImage())
            if not change.Change():
                sys.exit(f"e2e_many: GDCM cannot encode {plain} as {name}")
            writer = gdcm.ImageWriter()
            writer.SetFile(reader.GetFile())
            writer.SetImage(change.GetOutput())
            dst = out / name / plain.name
            writer.SetFileName(str(dst))
            if not writer.Write():
                sys.exit(f"e2e_many: GDCM cannot write {dst}")
            back = pydicom.dcmread(dst)
            if back.file_meta.TransferSyntaxUID != SYNTAXES[name] or not np.array_equal(back.pixel_array, px):
                sys.exit(f"e2e_many: {dst} does not decode to the original pixels")
    sizes = {n: sum(f.stat().st_size for f in (out / n).glob("*.dcm")) / 2**20 for n in SYNTAXES}
    print(f"e2e_many: wrote {count} files per syntax under {out} (MiB: "
          + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()) + ")")


def run_one(cmd: list, env: dict) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    chunks = []
    # Read stdout until EOF before reaping, so that a large output cannot block the child.
    for line in p.stdout:
        chunks.append(line)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    return {"rc": rc, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "peak_rss_mib": ru.ru_maxrss / 1024.0, "out": b"".join(chunks).decode(),
            "err": err.decode(errors="replace")[-2000:]}


def probabilities(out: str) -> dict:
    got = {}
    for line in out.splitlines():
        if line.strip().startswith("{"):
            o = json.loads(line)
            f = o.get("file") or o.get("path")
            p = o.get("probabilities")
            if p is None and "labels" in o:
                p = {lab["label"]: lab["probability"] for lab in o["labels"]}
            if f is not None and p is not None:
                got[Path(f).name] = p
    return got


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--out", default=str(REPO / "build-bench" / "bench-data" / "e2e-many"))
    mk.add_argument("--count", type=int, default=48)
    rn = sub.add_parser("run")
    rn.add_argument("--build", default="build")
    rn.add_argument("--data", default=str(REPO / "build-bench" / "bench-data" / "e2e-many"))
    rn.add_argument("--model", default=str(REPO / "models" / "cxr-pneumonia" / "package"))
    rn.add_argument("--rounds", type=int, default=3)
    rn.add_argument("--batch", type=int, default=16)
    rn.add_argument("--threads", type=int, default=2)
    rn.add_argument("--syntaxes", default="explicit,jpegls,j2k")
    rn.add_argument("--out", default=str(HERE / "results" / "e2e_many.json"))
    a = ap.parse_args()
    if a.cmd == "make":
        make(Path(a.out), a.count)
        return 0

    cli = Path(a.build) / "examples" / "medvision"
    if not cli.exists():
        sys.exit(f"e2e_many: {cli} not found (cmake --build {a.build} --target medvision_cli)")
    env = dict(os.environ, PYTHONPATH=str(HERE))
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor(),
           "cpus": os.cpu_count(), "threads": a.threads, "batch": a.batch, "rounds": a.rounds,
           "model": a.model, "loadavg": [os.getloadavg()], "sets": []}
    print(f"{'set':10s} {'files':>5s} {'wall s medvision / peer':>24s} {'ratio':>6s} "
          f"{'RSS MiB medvision / peer':>25s} {'CPU s medvision / peer':>23s}")
    for name in a.syntaxes.split(","):
        files = sorted(str(f) for f in (Path(a.data) / name).glob("*.dcm"))
        if not files:
            sys.exit(f"e2e_many: no files under {Path(a.data) / name} (run `e2e_many.py make` first)")
        for label, chosen, batch in ((name, files, a.batch), (name + "-1", files[:1], 1)):
            cmds = {"medvision": [str(cli), "classify", "--model", a.model, "--batch", str(batch),
                                  "--threads", str(a.threads), "--json"] + chosen,
                    "peer": [PY, str(HERE / "e2e_many_peer.py"), "--model", a.model, "--batch", str(batch),
                             "--threads", str(a.threads)] + chosen}
            runs = {"medvision": [], "peer": []}
            outputs = {}
            for r in range(a.rounds):
                order = ["medvision", "peer"] if r % 2 == 0 else ["peer", "medvision"]
                for side in order:
                    o = run_one(cmds[side], env)
                    if o["rc"] != 0:
                        sys.exit(f"e2e_many: {side} failed ({o['rc']}):\n{o['err']}")
                    outputs[side] = probabilities(o["out"])
                    runs[side].append({k: o[k] for k in ("wall_s", "user_s", "sys_s", "peak_rss_mib")})
            diff = max((abs(outputs["medvision"][f][k] - outputs["peer"][f][k])
                        for f in outputs["peer"] for k in outputs["peer"][f]), default=float("nan"))
            if len(outputs["medvision"]) != len(chosen) or len(outputs["peer"]) != len(chosen):
                sys.exit(f"e2e_many: {label}: expected {len(chosen)} results from each side")
            med = {s: {k: statistics.median(x[k] for x in runs[s]) for k in runs[s][0]} for s in runs}
            ratio = med["peer"]["wall_s"] / med["medvision"]["wall_s"]
            cpu = {s: med[s]["user_s"] + med[s]["sys_s"] for s in med}
            print(f"{label:10s} {len(chosen):5d} {med['medvision']['wall_s']:11.2f} / {med['peer']['wall_s']:<10.2f} "
                  f"{ratio:6.2f} {med['medvision']['peak_rss_mib']:12.0f} / {med['peer']['peak_rss_mib']:<10.0f} "
                  f"{cpu['medvision']:10.1f} / {cpu['peer']:<10.1f}", flush=True)
            res["sets"].append({"set": label, "files": len(chosen), "batch": batch, "runs": runs, "median": med,
                                "throughput_ratio_peer_over_medvision": ratio,
                                "max_abs_probability_difference": diff})
            res["loadavg"].append(os.getloadavg())
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(f"load averages {res['loadavg']}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
