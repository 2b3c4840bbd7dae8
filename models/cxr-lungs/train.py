#!/usr/bin/env python3
"""Train cxr-lungs: 2D U-Net on JSRT/SCR, 256x256 input, 4 classes (background, left lung,
right lung, heart; left/right = the PATIENT's side, as in SCR), softmax.

Net: UNet2D 16-32-64-128-256 (~1.9 M params, ~7.4 MB). Loss: cross-entropy + soft Dice (foreground
classes). AdamW + warmup/cosine tied to the wall-clock budget, bf16 on CUDA, EMA. On-GPU augmentation:
random affine (image bilinear, labels nearest), brightness/contrast/gamma/noise; NO horizontal flip
(it would swap the anatomical left/right labels and put the heart on the wrong side).
Split: 20 % of the 197 cases (one image per patient) held out, stratified by nodule (pack meta).
Writes best.weights.npz, metrics.json (per-class Dice), val_predictions.csv (per case Dice),
val_predictions.npz (predicted label maps, for HD95 in tools/evaluate.py), last.ckpt.

  python3 models/cxr-lungs/train.py --data .devdata/cxr-lungs/pack.npz --out OUT [--minutes 2.5]
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
from common.aug import cxr_augment  # noqa: E402
from common.nets import UNet2D, n_params  # noqa: E402
from common.packio import load_pack  # noqa: E402
from common.preprocess import CXR_MEAN, CXR_STD, cxr_steps  # noqa: E402
from common.train_utils import (EMA, Budget, autocast, base_parser, elapsed, fmt_s, fp32_exact,  # noqa: E402
                                load_weights, lr_at, make_optimizer, save_checkpoint, save_weights, setup,
                                torch_load, write_json)

WIDTHS = [16, 32, 64, 128, 256]


@torch.no_grad()
def predict(model, X, dev, bs=32, amp=True):
    model.eval()
    out = []
    for s in range(0, len(X), bs):
        x = X[s:s + bs].to(dev).float().div_(255).sub_(CXR_MEAN).div_(CXR_STD)
        if amp:
            with autocast(dev):
                out.append(model(x).float().argmax(1).to(torch.uint8))
        else:
            out.append(model(x).float().argmax(1).to(torch.uint8))
    return torch.cat(out)


def dice_per_class(pred, gt, K):
    """pred, gt [N, H, W] int -> [N, K-1] Dice of classes 1..K-1 (1.0 when both empty)."""
    res = []
    for k in range(1, K):
        p, g = pred == k, gt == k
        inter = (p & g).sum((1, 2)).float()
        den = (p.sum((1, 2)) + g.sum((1, 2))).float()
        res.append(torch.where(den > 0, 2 * inter / den.clamp(min=1), torch.ones_like(den)))
    return torch.stack(res, 1)


def main():
    ap = base_parser(__doc__, 2.5, 150)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps-per-epoch", type=int, default=20)
    ap.add_argument("--select", choices=["best", "last"], default="best")
    args = ap.parse_args()
    dev = setup(args)
    out = Path(args.out)
    g = torch.Generator(device=dev)
    g.manual_seed(args.seed)

    meta, a = load_pack(args.data)
    classes = meta["classes"]
    K = len(classes)
    X = torch.from_numpy(a["images"])[:, None]
    Y = torch.from_numpy(a["labels"]).long()
    is_val = a["is_val"].astype(bool)
    ids = meta["ids"]
    tr, va = np.where(~is_val)[0], np.where(is_val)[0]
    if args.smoke:
        tr, va = tr[:16], va[:8]
    Xtr, Ytr = X[tr].to(dev), Y[tr].to(dev)
    Xva, Yva = X[va], Y[va].to(dev)
    size = list(X.shape[-2:])
    log(f"[data] {args.data}: train {len(tr)} val {len(va)} classes {classes} size {size} elapsed {elapsed():.0f}s")

    arch = {"kind": "UNet2D", "in_ch": 1, "num_classes": K, "widths": WIDTHS}
    model = UNet2D(1, K, WIDTHS).to(dev)
    log(f"[model] UNet2D {n_params(model) / 1e6:.2f}M params")
    opt = make_optimizer(model, args.lr, args.wd)
    ema = EMA(model, 0.99)
    bs = min(4 if args.smoke else args.batch, len(tr))
    spe = 2 if args.smoke else args.steps_per_epoch
    epochs = args.epochs
    config = {"name": "cxr-lungs", "arch": arch, "labels": classes, "task": "segmentation",
              "input": {"channels": 1, "size": size, "ndim": 2}, "preprocess": cxr_steps(size, 1),
              "activation": "softmax",
              "train": {"data": Path(args.data).name, "lr": args.lr, "wd": args.wd, "batch": bs,
                        "select": args.select, "seed": args.seed}}
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
    budget = Budget(args.minutes, epochs, spe, 15.0, p0)
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
            idx = torch.randint(0, len(tr), (bs,), device=dev, generator=g)
            x = Xtr[idx].float().div_(255)
            x, y = cxr_augment(x, g, y=Ytr[idx], res_p=0.1)
            x = x.sub_(CXR_MEAN).div_(CXR_STD)
            with autocast(dev):
                logit = model(x)
            logit = logit.float()
            ce = F.cross_entropy(logit, y)
            prob = logit.softmax(1)
            oh = F.one_hot(y, K).permute(0, 3, 1, 2).float()
            inter = (prob * oh).sum((0, 2, 3))
            den = prob.sum((0, 2, 3)) + oh.sum((0, 2, 3))
            sdice = ((2 * inter + 1) / (den + 1))[1:].mean()
            loss = ce + (1 - sdice)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            ema.update(model)
            tot += loss.detach()
            nb += 1
        if nb == spe:
            p = budget.progress(epoch + 1, 0)
        pred = predict(ema.model, Xva, dev)
        dc = dice_per_class(pred, Yva, K).mean(0).cpu().numpy()
        m = float(dc.mean())
        rec = {"epoch": epoch, "train_loss": float(tot) / max(nb, 1), "val_mean_dice": m,
               "val_dice": dict(zip(classes[1:], dc.tolist())), "p": p, "time_s": time.time() - t_ep,
               "elapsed_s": elapsed()}
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
            + f" p {p:.2f} {rec['time_s']:.1f}s elapsed {fmt_s(elapsed())}")
        epoch += 1
    if args.select == "last" or not (out / "best.weights.npz").exists():
        save_weights(out / "best.weights.npz", ema.model, config, {"epoch": epoch - 1, "selected": "last"})

    cfg, sd = load_weights(out / "best.weights.npz")
    final = UNet2D(1, K, WIDTHS).to(dev)
    final.load_state_dict(sd)
    with fp32_exact():
        pred = predict(final, Xva, dev, amp=False)
    dcs = dice_per_class(pred, Yva, K).cpu().numpy()
    lung_u = dice_per_class((pred == 1) | (pred == 2), (Yva == 1) | (Yva == 2), 2).cpu().numpy()[:, 0]
    vids = [ids[i] for i in va.tolist()]
    with open(out / "val_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id"] + [f"dice_{c}" for c in classes[1:]] + ["dice_lungs_union"])
        for i, cid in enumerate(vids):
            w.writerow([cid] + [f"{v:.5f}" for v in dcs[i]] + [f"{lung_u[i]:.5f}"])
    np.savez_compressed(out / "val_predictions.npz", pred=pred.cpu().numpy(), ids=np.array(vids))
    per = {c: {"mean": float(dcs[:, j].mean()), "median": float(np.median(dcs[:, j])), "min": float(dcs[:, j].min())}
           for j, c in enumerate(classes[1:])}
    metrics = {"model": "cxr-lungs", "smoke": args.smoke, "device": str(dev), "torch": torch.__version__,
               "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               "selected": args.select, "selected_epoch": cfg.get("epoch"), "best_epoch": best_epoch,
               "epochs_run": epoch, "train_cases": len(tr), "val_cases": len(va),
               "val_mean_dice": float(dcs.mean()), "val_dice": per,
               "val_dice_lungs_union": float(lung_u.mean()),
               "hd95": "computed by models/tools/evaluate.py from val_predictions.npz",
               "history": hist, "elapsed_s": elapsed(), "config": config}
    write_json(out / "metrics.json", metrics)
    log(f"[final] val mean Dice {dcs.mean():.4f} | " + " ".join(f"{c} {v['mean']:.4f}" for c, v in per.items())
        + f" | lungs(union) {lung_u.mean():.4f}")
    log(f"[done] cxr-lungs: wrote {out} in {fmt_s(elapsed())}")


if __name__ == "__main__":
    main()
