#!/usr/bin/python3
"""e2e_peer: the Python program a user would write instead of medvision, for the end-to-end
benchmark. Same TorchScript file, same thread count, the same preprocessing as the package's
manifest (monochrome, percentile 0.5/99.5 scale, antialiased bilinear stretch to 224, 3 channels,
ImageNet normalize), written with numpy + torchvision transforms:

  decode      pydicom dcmread + pixel_array + apply_modality_lut -> float32
  preprocess  numpy (invert, percentile, clip) + torchvision resize(antialias=True) + Normalize
  infer       torch.jit.load(model.pt) forward under inference_mode + sigmoid

  e2e_peer.py --model DIR [--threads N] [--batch N] [--repeat N] [--warmup N] [--cold] FILE...

Prints one JSON object shaped like `medvision bench --json` (stages decode, preprocess, infer,
run = preprocess + infer). --cold: load, first result, print the time from interpreter start and exit.
"""
import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402
from pydicom.pixel_data_handlers.util import apply_modality_lut  # noqa: E402


def decode(path):
    ds = pydicom.dcmread(path)
    px = apply_modality_lut(ds.pixel_array, ds).astype(np.float32, copy=False)
    return px, ds.PhotometricInterpretation


class Preprocess:
    def __init__(self, manifest):
        steps = {s["op"]: s for s in manifest["preprocess"]}
        self.low, self.high = steps["scale"]["low"], steps["scale"]["high"]
        self.size = steps["resize"]["size"]
        self.channels = steps["channels"]["channels"]
        self.mean, self.std = steps["normalize"]["mean"], steps["normalize"]["std"]

    def __call__(self, px, photometric):
        if photometric == "MONOCHROME1":
            px = px.max() + px.min() - px
        lo, hi = np.percentile(px, [self.low, self.high])
        px = np.clip((px - lo) / (hi - lo), 0.0, 1.0).astype(np.float32, copy=False)
        t = TF.resize(torch.from_numpy(px)[None], self.size, antialias=True)
        t = t.expand(self.channels, -1, -1)
        return TF.normalize(t, self.mean, self.std)


def stage(ms):
    a = np.asarray(ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "min": float(a.min()),
            "samples": [float(x) for x in ms]}


def timed(warmup, repeat, fn):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    manifest = json.loads((Path(a.model) / "manifest.json").read_text())
    model = torch.jit.load(str(Path(a.model) / manifest["model_file"]), map_location="cpu").eval()
    pre = Preprocess(manifest)
    load_ms = (time.perf_counter() - T_START) * 1e3

    def infer(x):
        with torch.inference_mode():
            return torch.sigmoid(model(x))

    out = {"tool": "python-peer", "versions": {"torch": torch.__version__, "pydicom": pydicom.__version__,
                                               "numpy": np.__version__},
           "threads": torch.get_num_threads(), "batch": a.batch, "repeat": a.repeat, "load_ms": load_ms,
           "files": []}
    first = None
    for f in a.files:
        px, pi = decode(f)
        x1 = pre(px, pi)[None]
        if first is None:
            infer(x1)
            first = (time.perf_counter() - T_START) * 1e3
            if a.cold:
                print(json.dumps({"tool": "python-peer", "first_result_ms": first, "load_ms": load_ms}))
                return
        xb = x1.expand(a.batch, -1, -1, -1).contiguous()
        dec = timed(a.warmup, a.repeat, lambda: decode(f))
        prep = timed(a.warmup, a.repeat, lambda: pre(px, pi))
        inf = timed(a.warmup, a.repeat, lambda: infer(xb))
        run = [p * a.batch + i for p, i in zip(prep, inf)]
        e2e = a.batch * float(np.percentile(dec, 50)) + float(np.percentile(run, 50))
        j = {"file": f, "decode_ms": stage(dec), "preprocess_ms": stage([p * a.batch for p in prep]),
             "infer_ms": stage(inf), "run_ms": stage(run), "e2e_ms_p50": e2e,
             "images_per_s": 1000.0 * a.batch / e2e}
        if a.batch == 1:
            j["e2e_ms"] = stage([d + r for d, r in zip(dec, run)])
        out["files"].append(j)
    out["first_result_ms"] = first
    print(json.dumps(out))


if __name__ == "__main__":
    main()
