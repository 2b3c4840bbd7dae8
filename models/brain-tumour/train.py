#!/usr/bin/env python3
"""Train brain-tumour: 3D U-Net whole-tumour segmentation from FLAIR + T1 (2 channels, in that
order), BraTS 2018 (7 cases here; 2 held out for validation, chosen by the pack's seed).

Preprocessing = manifest: reorient RAS, (1 mm iso already), z-score per channel over nonzero voxels
(zeros stay 0). Network: UNet3D 16-32-64-128-128, InstanceNorm + LeakyReLU (~3.7 M params, ~14 MB),
one sigmoid output. Patches 96^3 (batch 2), half of them centred on a tumour voxel; augmentation on
the GPU: mirroring on all axes, small rotation/scaling, per-channel intensity scale/shift, noise.
Loss BCE + soft Dice; AdamW, warmup/cosine tied to the wall-clock budget; bf16 on CUDA; EMA.
Validation: sliding window (96^3, overlap 0.5, Gaussian blending of logits) over the FULL
240x240x155 volume, threshold 0.5, Dice per case. Weights kept: final EMA (--select last; with 2
validation cases, best-epoch selection would be optimistic).
Writes best.weights.npz, metrics.json, val_predictions.csv (per case), val_predictions.npz
(predicted masks, packed bits, for HD95 in tools/evaluate.py), last.ckpt.

  python3 models/brain-tumour/train.py --data .devdata/brain-tumour/pack.npz --out OUT [--minutes 5.5]
Needs only torch + numpy.
"""
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import log  # noqa: E402
from common.aug import brain_augment  # noqa: E402
from common.infer import sliding_window  # noqa: E402
from common.nets import UNet3D, n_params  # noqa: E402
from common.packio import load_pack  # noqa: E402
from common.preprocess import brain_steps  # noqa: E402
from common.train_utils import (EMA, Budget, autocast, base_parser, elapsed, fmt_s, fp32_exact,  # noqa: E402
                                load_weights, lr_at, make_optimizer, save_checkpoint, save_weights, setup,
                                torch_load, write_json)

WIDTHS = [16, 32, 64, 128, 128]


def zscore_nonzero(v):
    """[C, D, H, W] float -> per channel (x - mean) / std over x != 0; zeros stay 0."""
    out = torch.zeros_like(v)
    for c in range(v.shape[0]):
        m = v[c] != 0
        vals = v[c][m].double()
        if vals.numel():
            mu, sd = vals.mean(), vals.std(unbiased=False).clamp(min=1e-8)
            out[c][m] = ((vals - mu) / sd).float()
    return out


def load_cases(path, dev, smoke):
    meta, a = load_pack(path)
    cases = {}
    for rec in meta["cases"]:
        c = rec["case"]
        img = torch.from_numpy(a[f"img_{c}"].astype(np.float32)).to(dev)
        gt = torch.from_numpy(a[f"gt_{c}"]).to(dev)
        if smoke:  # quarter resolution for a CPU smoke test
            img = img[:, ::4, ::4, ::4].contiguous()
            gt = gt[::4, ::4, ::4].contiguous()
        cases[c] = {"img": zscore_nonzero(img), "gt": gt, "rec": rec}
    return meta, cases


def full_volume(case, smoke):
    """The crop put back into the full (reoriented) volume, as the runtime would see it."""
    rec = case["rec"]
    if smoke:
        return case["img"], case["gt"], None
    shp = rec["full_shape"]
    lo, hi = rec["bbox_lo"], rec["bbox_hi"]
    img = torch.zeros([2] + shp, device=case["img"].device)
    gt = torch.zeros(shp, dtype=torch.bool, device=case["img"].device)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    img[(slice(None),) + sl] = case["img"]
    gt[sl] = case["gt"]
    return img, gt, sl


def sample_batch(train, patch, bs, g, dev, p_fg=0.5):
    xs, ys = [], []
    names = list(train)
    r = torch.rand(bs, 5, generator=g, device=dev).cpu()
    for b in range(bs):
        cs = train[names[int(r[b, 0] * len(names)) % len(names)]]
        img, gt = cs["img"], cs["gt"]
        shp = list(gt.shape)
        if r[b, 1] < p_fg and cs["fg"].shape[0] > 0:
            ctr = cs["fg"][int(r[b, 2] * cs["fg"].shape[0]) % cs["fg"].shape[0]].tolist()
        else:
            ctr = [int(r[b, 2 + i] * s) for i, s in enumerate(shp)]
        st = [min(max(c - p // 2, 0), max(s - p, 0)) for c, p, s in zip(ctr, patch, shp)]
        sl = tuple(slice(a, a + p) for a, p in zip(st, patch))
        x = img[(slice(None),) + sl]
        y = gt[sl].float()[None]
        pad = []
        for p, s in zip(reversed(patch), reversed(list(x.shape[1:]))):
            pad += [0, p - s]
        if any(pad):
            x, y = F.pad(x, pad), F.pad(y, pad)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def evaluate(model, val, patch, dev, smoke, amp=True):
    model.eval()
    res = {}
    for c, cs in val.items():
        img, gt, sl = full_volume(cs, smoke)
        lg = sliding_window(model, img, patch, 0.5, 4, autocast(dev) if amp else None)[0]
        pred = lg > 0
        inter = (pred & gt).sum().item()
        den = pred.sum().item() + gt.sum().item()
        res[c] = {"dice": 2 * inter / den if den else 1.0, "pred": pred, "gt_voxels": int(gt.sum()),
                  "pred_voxels": int(pred.sum())}
    return res


def main():
    ap = base_parser(__doc__, 5.5, 400)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    ap.add_argument("--select", choices=["best", "last"], default="last")
    args = ap.parse_args()
    dev = setup(args)
    out = Path(args.out)
    g = torch.Generator(device=dev)
    g.manual_seed(args.seed)
    patch = [32, 32, 32] if args.smoke else [args.patch] * 3
    widths = [4, 8, 16, 32, 32] if args.smoke else WIDTHS

    meta, cases = load_cases(args.data, dev, args.smoke)
    val_names = meta["val_cases"]
    train = {c: v for c, v in cases.items() if c not in val_names}
    val = {c: v for c, v in cases.items() if c in val_names}
    for cs in train.values():
        cs["fg"] = cs["gt"].nonzero()
    log(f"[data] {args.data}: train {list(train)} val {list(val)} patch {patch} elapsed {elapsed():.0f}s")

    arch = {"kind": "UNet3D", "in_ch": 2, "num_classes": 1, "widths": widths}
    model = UNet3D(2, 1, widths).to(dev)
    log(f"[model] UNet3D {n_params(model) / 1e6:.2f}M params widths {widths}")
    opt = make_optimizer(model, args.lr, args.wd)
    ema = EMA(model, 0.99)
    spe = 2 if args.smoke else args.steps_per_epoch
    epochs = args.epochs
    config = {"name": "brain-tumour", "arch": arch, "labels": ["whole_tumour"], "task": "segmentation",
              "input": {"channels": 2, "size": patch, "ndim": 3, "spacing": [1.0, 1.0, 1.0]},
              "channel_names": ["FLAIR", "T1"], "preprocess": brain_steps((1.0, 1.0, 1.0)),
              "activation": "sigmoid",
              "train": {"data": Path(args.data).name, "lr": args.lr, "wd": args.wd, "batch": args.batch,
                        "patch": patch, "select": args.select, "seed": args.seed}}
    ckpt = out / "last.ckpt"
    start_epoch, p0, best, best_epoch, hist = 0, 0.0, -1.0, -1, []
    if args.resume and ckpt.exists():
        st = torch_load(ckpt, dev)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        start_epoch, p0, best, best_epoch, hist = st["epoch"] + 1, st["p"], st["best"], st["best_epoch"], st["hist"]
        log(f"[resume] from epoch {start_epoch} p={p0:.3f}")
    budget = Budget(args.minutes, epochs, spe, 30.0, p0)
    p, epoch = p0, start_epoch
    while p < 1.0 and epoch < epochs:
        model.train()
        t_ep = time.time()
        tot, nb = torch.zeros((), device=dev), 0
        for step in range(spe):
            p = budget.progress(epoch, step)
            if p >= 1.0:
                break
            for gr in opt.param_groups:
                gr["lr"] = lr_at(p, args.lr)
            x, y = sample_batch(train, patch, args.batch, g, dev)
            x, y = brain_augment(x, y, g)
            with autocast(dev):
                logit = model(x)
            logit = logit.float()
            bce = F.binary_cross_entropy_with_logits(logit, y)
            pr = torch.sigmoid(logit)
            sd = 1 - (2 * (pr * y).sum() + 1) / (pr.sum() + y.sum() + 1)
            loss = bce + sd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            ema.update(model)
            tot += loss.detach()
            nb += 1
        if nb == spe:
            p = budget.progress(epoch + 1, 0)
        t_ev = time.time()
        ev = evaluate(ema.model, val, patch, dev, args.smoke)
        m = float(np.mean([r["dice"] for r in ev.values()]))
        rec = {"epoch": epoch, "train_loss": float(tot) / max(nb, 1), "val_mean_dice": m,
               "val_dice": {c: r["dice"] for c, r in ev.items()}, "p": p, "time_s": time.time() - t_ep,
               "eval_s": time.time() - t_ev, "elapsed_s": elapsed()}
        hist.append(rec)
        improved = m > best
        if improved:
            best, best_epoch = m, epoch
        if args.select == "best" and improved:
            save_weights(out / "best.weights.npz", ema.model, config, {"epoch": epoch, "val_mean_dice": m})
        save_checkpoint(ckpt, model=model.state_dict(), ema=ema.model.state_dict(), ema_updates=ema.updates,
                        opt=opt.state_dict(), epoch=epoch, p=p, best=best, best_epoch=best_epoch, hist=hist)
        log(f"[ep {epoch:3d}] loss {rec['train_loss']:.4f} val Dice {m:.4f}{' *' if improved else ''} "
            + " ".join(f"{c} {v:.3f}" for c, v in rec["val_dice"].items())
            + f" p {p:.2f} {rec['time_s']:.1f}s (eval {rec['eval_s']:.1f}s) elapsed {fmt_s(elapsed())}")
        epoch += 1
    if args.select == "last" or not (out / "best.weights.npz").exists():
        save_weights(out / "best.weights.npz", ema.model, config, {"epoch": epoch - 1, "selected": "last"})

    cfg, sd = load_weights(out / "best.weights.npz")
    final = UNet3D(2, 1, widths).to(dev)
    final.load_state_dict(sd)
    with fp32_exact():
        ev = evaluate(final, val, patch, dev, args.smoke, amp=False)
    with open(out / "val_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "subject", "dice", "gt_voxels", "pred_voxels"])
        for c, r in ev.items():
            w.writerow([c, val[c]["rec"]["subject"], f"{r['dice']:.5f}", r["gt_voxels"], r["pred_voxels"]])
    np.savez_compressed(out / "val_predictions.npz",
                        **{f"pred_{c}": np.packbits(r["pred"].cpu().numpy().reshape(-1)) for c, r in ev.items()},
                        **{f"shape_{c}": np.array(list(r["pred"].shape)) for c, r in ev.items()})
    dices = [r["dice"] for r in ev.values()]
    metrics = {"model": "brain-tumour", "smoke": args.smoke, "device": str(dev), "torch": torch.__version__,
               "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "selected": args.select, "selected_epoch": cfg.get("epoch"), "best_epoch": best_epoch,
               "epochs_run": epoch, "train_cases": list(train), "val_cases": list(val),
               "val_mean_dice": float(np.mean(dices)),
               "val_dice": {c: {"dice": r["dice"], "subject": val[c]["rec"]["subject"], "gt_voxels": r["gt_voxels"],
                                "pred_voxels": r["pred_voxels"]} for c, r in ev.items()},
               "eval": "sliding window 96^3 overlap 0.5 gaussian on the full reoriented volume, sigmoid > 0.5",
               "hd95": "computed by models/tools/evaluate.py from val_predictions.npz",
               "history": hist, "elapsed_s": elapsed(), "config": config}
    write_json(out / "metrics.json", metrics)
    log(f"[final] val Dice " + " ".join(f"{c} {r['dice']:.4f}" for c, r in ev.items()) + f" mean {np.mean(dices):.4f}")
    log(f"[done] brain-tumour: wrote {out} in {fmt_s(elapsed())}")


if __name__ == "__main__":
    main()
