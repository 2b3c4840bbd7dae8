#!/usr/bin/python3
"""e2e_many_peer: the program a Python user would write to classify a folder of DICOM chest X-rays
with a medvision package's model.pt, for `benchmarks/e2e_many.py` (issue 17's end-to-end
comparison): pydicom + GDCM decode, Modality LUT, the manifest's preprocessing in numpy and
torchvision (percentile scale, antialiased resize, normalize; `e2e_peer.Preprocess`),
`torch.jit.load` of the same model.pt under `inference_mode`, `--threads` intra-op threads,
batches of `--batch`, sigmoid. Decoding and inference run one after the other, as such a program
does. Prints one JSON line per image ({"file", "probabilities"}), like `medvision classify --json`.

  e2e_many_peer.py --model DIR [--threads 2] [--batch 16] FILE...
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

from e2e_peer import Preprocess, decode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    package = Path(a.model)
    manifest = json.loads((package / "manifest.json").read_text())
    prep = Preprocess(manifest)
    model = torch.jit.load(str(package / manifest["model_file"]), map_location="cpu").eval()
    labels = manifest["labels"]
    with torch.inference_mode():
        for start in range(0, len(a.files), a.batch):
            chunk = a.files[start:start + a.batch]
            x = torch.stack([prep(*decode(f)) for f in chunk])
            p = torch.sigmoid(model(x)).numpy().astype(np.float64)
            for f, row in zip(chunk, p):
                print(json.dumps({"file": f, "probabilities": dict(zip(labels, row.tolist()))}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
