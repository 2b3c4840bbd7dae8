"""The default intra-op thread count: every CPU the process may use (issue 17).

LibTorch's own default is the number of physical cores (1 on a 2-vCPU virtual machine, half the
speed there). Python torch and medvision share one libtorch in this process, so
torch.get_num_threads() shows the pool medvision set. Each case runs in a fresh interpreter:
the pool is process-wide.
"""
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import os, sys
    import medvision, torch
    cpus, threads = sys.argv[1], int(sys.argv[2])
    if cpus != "all":
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
    torch.set_num_threads(1)
    medvision.Model("cxr-pneumonia", num_threads=threads, warmup=False)
    print(torch.get_num_threads(), len(os.sched_getaffinity(0)))
    """
)


def probe(cpus: str, threads: int) -> tuple:
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("Python torch (python3-torch) is not installed")
    out = subprocess.run([sys.executable, "-c", PROBE, cpus, str(threads)], check=True,
                         capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    pool, affinity = (int(v) for v in out.stdout.split()[-2:])
    return pool, affinity


def test_default_uses_every_allowed_cpu():
    pool, affinity = probe("all", 0)
    assert pool == affinity


def test_default_follows_the_affinity_mask():
    first = min(os.sched_getaffinity(0))
    pool, affinity = probe(str(first), 0)
    assert (pool, affinity) == (1, 1)


def test_explicit_count_and_keep():
    assert probe("all", 3)[0] == 3
    assert probe("all", -1)[0] == 1  # -1 leaves the pool as the host set it (1 above)
