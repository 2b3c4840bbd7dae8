"""Training plumbing shared by the train.py scripts (torch + numpy + stdlib only)."""
from __future__ import annotations

import argparse
import copy
import io
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from . import log

T_START = time.time()  # the process budget (--minutes) counts from module import


# ------------------------------------------------------------------ CLI / device

def base_parser(description: str, default_minutes: float, default_epochs: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, help="packed data file (.devdata/<name>/pack.npz)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"max epochs; the schedule ends at whichever of --epochs/--minutes comes first "
                        f"(default {default_epochs}; 1 with --smoke)")
    p.set_defaults(default_epochs=default_epochs)
    p.add_argument("--minutes", type=float, default=default_minutes,
                   help="wall-clock budget for the whole process incl. loading and final eval; 0 = none")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--smoke", action="store_true", help="tiny subset, 1 epoch, CPU-friendly")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.ckpt if present")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=int(os.environ.get("MEDVISION_THREADS", "0")),
                   help="torch CPU threads (default: 2 on CPU runs, torch default on CUDA)")
    return p


def setup(args):
    if args.epochs is None:
        args.epochs = 1 if args.smoke else args.default_epochs
    if args.device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    elif dev.type == "cpu":
        torch.set_num_threads(2)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    log(f"[setup] torch {torch.__version__} device {dev} ({name}) threads {torch.get_num_threads()}"
        f" budget {args.minutes} min epochs {args.epochs} smoke {args.smoke}")
    return dev


def autocast(dev):
    if dev.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False)


class fp32_exact:
    """Context: full fp32 (no TF32) for the final evaluation whose logits are written out."""

    def __enter__(self):
        self.s = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *a):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.s


# ------------------------------------------------------------------ budget + schedule

class Budget:
    """Progress p in [0, 1] = max(time fraction, epoch fraction). The time fraction runs from the
    start of training to (process start + minutes - reserve); on --resume the remaining schedule
    (1 - p0) is spread over this invocation's budget. LR follows p, so the cosine schedule ends
    exactly when the budget does, whatever the GPU speed."""

    def __init__(self, minutes: float, epochs: int, steps_per_epoch: int, reserve_s: float, p0: float = 0.0):
        self.deadline = T_START + minutes * 60.0 - reserve_s if minutes and minutes > 0 else None
        self.t0 = time.time()
        self.epochs = max(int(epochs), 1)
        self.spe = max(int(steps_per_epoch), 1)
        self.p0 = p0
        if self.deadline is not None and self.deadline - self.t0 < 5:
            log(f"[budget] WARNING only {self.deadline - self.t0:.0f}s left for training")

    def progress(self, epoch: int, step: int) -> float:
        pe = (epoch + step / self.spe) / self.epochs
        if self.deadline is None:
            return min(pe, 1.0)
        span = max(self.deadline - self.t0, 1e-3)
        pt = self.p0 + (1 - self.p0) * (time.time() - self.t0) / span
        return min(max(pe, pt), 1.0)

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.time()


def lr_at(p: float, base: float, warmup: float = 0.03, final_frac: float = 0.01) -> float:
    if p < warmup:
        return base * (0.1 + 0.9 * p / warmup)
    q = (p - warmup) / max(1 - warmup, 1e-8)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(q, 1.0))))


def make_optimizer(model, lr, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999))


class EMA:
    """Exponential moving average of parameters and float buffers (BN stats)."""

    def __init__(self, model, decay: float = 0.998):
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            src = msd[k]
            if v.dtype.is_floating_point:
                v.mul_(d).add_(src.detach(), alpha=1 - d)
            else:
                v.copy_(src)


# ------------------------------------------------------------------ weights + checkpoints

MAX_FILE = 15 * 1024 * 1024  # keep every file handed back well under 16 MiB


def save_weights(path, model, config: dict, extra: dict | None = None) -> str:
    """State dict as a numpy .npz (readable by any torch version) + JSON config. Float tensors
    are stored float32, or float16 (parameters only, buffers stay float32) if the file would
    exceed 15 MiB."""
    sd = {k: v.detach().float().cpu().numpy() if v.dtype.is_floating_point else v.detach().cpu().numpy()
          for k, v in model.state_dict().items()}
    total = sum(a.nbytes for a in sd.values())
    half = total > MAX_FILE
    if half:
        pnames = {n for n, _ in model.named_parameters()}
        sd = {k: (a.astype(np.float16) if (k in pnames and a.dtype == np.float32) else a) for k, a in sd.items()}
    cfg = dict(config)
    cfg["stored_fp16"] = half
    if extra:
        cfg.update(extra)
    sd["__config__"] = np.frombuffer(json.dumps(cfg).encode(), np.uint8)
    tmp = str(path) + ".tmp.npz"
    np.savez(tmp, **sd)
    os.replace(tmp, path)
    return str(path)


def load_weights(path):
    """-> (config dict, {name: float32/int torch tensor})."""
    with np.load(path, allow_pickle=False) as z:
        cfg = json.loads(bytes(z["__config__"]).decode())
        sd = {}
        for k in z.files:
            if k == "__config__":
                continue
            a = z[k]
            sd[k] = torch.from_numpy(a.astype(np.float32) if a.dtype == np.float16 else a.copy())
    return cfg, sd


def load_package_weights(path):
    """A medvision package's TorchScript model.pt (or its folder) -> (config with name/labels from
    the manifest beside it, state dict). The scripted module's state dict has the eager net's keys."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    man = json.loads((p.parent / "manifest.json").read_text()) if (p.parent / "manifest.json").exists() else {}
    sd = {k: v.detach().float() if v.dtype.is_floating_point else v.detach()
          for k, v in torch.jit.load(str(p), map_location="cpu").state_dict().items()}
    return {"name": man.get("name"), "labels": man.get("labels"), "version": man.get("version")}, sd


def init_from(model, path, labels=None, skip_head=False):
    """Copy every shape-matching tensor from a weights .npz, or from a package's model.pt (or the
    package folder); for the classifier head (fc.*) copy rows by label name when both sides list
    labels. Returns a short report string."""
    if not path or not Path(path).exists():
        return f"init: none ({path} not found) - training from scratch"
    is_pkg = Path(path).is_dir() or str(path).endswith(".pt")
    cfg, src = load_package_weights(path) if is_pkg else load_weights(path)
    dst = model.state_dict()
    n_ok, n_head = 0, 0
    for k, v in dst.items():
        if k.startswith("fc."):
            continue
        if k in src and tuple(src[k].shape) == tuple(v.shape):
            v.copy_(src[k].to(v.dtype))
            n_ok += 1
    src_labels = cfg.get("labels") or []
    if not skip_head and labels and src_labels and "fc.weight" in src:
        for i, lab in enumerate(labels):
            if lab in src_labels:
                j = src_labels.index(lab)
                dst["fc.weight"][i].copy_(src["fc.weight"][j])
                dst["fc.bias"][i].copy_(src["fc.bias"][j])
                n_head += 1
    model.load_state_dict(dst)
    ver = f" {cfg['version']}" if cfg.get("version") else ""
    return (f"init: {n_ok}/{len(dst)} tensors from {path} ({cfg.get('name')}{ver}), "
            f"head rows {n_head}/{len(labels or [])}")


def torch_load(path, map_location="cpu"):
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except TypeError:
        return torch.load(path, map_location=map_location)


def save_checkpoint(path, **state):
    tmp = str(path) + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def write_json(path, obj):
    def conv(o):
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o))
    txt = json.dumps(obj, indent=2, default=conv, allow_nan=True)
    Path(path).write_text(txt + "\n")


def fmt_s(sec: float) -> str:
    return f"{sec:.0f}s" if sec < 120 else f"{sec / 60:.1f}min"


def elapsed() -> float:
    return time.time() - T_START
