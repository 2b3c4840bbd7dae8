#!/usr/bin/python3
"""The Python call path a user would write (torch.jit.load, then torch.jit.freeze /
torch.jit.optimize_for_inference as asked, torch.inference_mode), for infer_gap.py: same
arguments, input and JSON as infer_bench.cpp. docs/performance.md.

  infer_peer.py MODEL.pt GRAPH THREADS SHAPE BATCHES REPEAT [WARMUP]
"""
import json
import sys
import time

import torch


def main() -> int:
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    path, graph, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shape = [int(s) for s in sys.argv[4].split(",")]
    batches = [int(b) for b in sys.argv[5].split(",")]
    repeat = int(sys.argv[6])
    warmup = int(sys.argv[7]) if len(sys.argv) > 7 else 3
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    m = torch.jit.load(path, map_location="cpu").eval()
    if graph in ("freeze", "optimize_for_inference"):
        m = torch.jit.freeze(m)
    if graph == "optimize_for_inference":
        m = torch.jit.optimize_for_inference(m)
    load_ms = (time.perf_counter() - t0) * 1e3
    out = {"path": "Python (torch.jit)", "graph": graph, "load_ms": load_ms, "batches": {}}
    for b in batches:
        n = b
        for s in shape:
            n *= s
        # The same pattern as infer_bench.cpp: ((i * 7919) % 4001) / 1000 - 2.
        i = torch.arange(n, dtype=torch.int64)
        x = (((i * 7919) % 4001).to(torch.float32) / 1000.0 - 2.0).reshape([b] + shape)
        first, ms = [], []
        with torch.inference_mode():
            for k in range(warmup + repeat):
                a = time.perf_counter()
                y = m(x)
                y = y[0] if isinstance(y, (tuple, list)) else y
                y = y.float().contiguous().numpy().copy()  # to the host, as medvision does
                (first if k < warmup else ms).append((time.perf_counter() - a) * 1e3)
        out["batches"][str(b)] = {"first": first, "samples": ms}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
