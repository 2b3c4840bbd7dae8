#!/usr/bin/python3
"""The Python peer of `medvision segment` for benchmarks/segment_bench.py: nibabel + numpy +
torch with a torch implementation of MONAI's sliding window (tests/segment/
sliding_window_reference.py), the same TorchScript, then threshold / nested labels like medvision,
and the label map written as .npy.

  segment_peer.py VOLUME.nii.gz --model model.pt --roi 96 96 96 --threads 2 --batch 4 --out mask.npy
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "segment"))
from sliding_window_reference import segment_files  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--model", required=True)
    ap.add_argument("--roi", type=int, nargs=3, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torch.jit.load(a.model).eval()
    prob = segment_files(a.files, model, a.roi, a.overlap, a.batch)
    label = np.zeros(prob.shape[1:], np.float32)
    for k in range(prob.shape[0]):  # nested regions: the later class wins, as medvision
        label[prob[k] > 0.5] = k + 1
    np.save(a.out, label)


if __name__ == "__main__":
    main()
