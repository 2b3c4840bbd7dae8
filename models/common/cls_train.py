"""Shared trainer for the CXR classifiers (cxr-pneumonia, cxr-findings, cxr-edema).

torch + numpy only. Data stay on the device as uint8; augmentation is batched on the device.
Writes to --out: best.weights.npz (EMA weights of the selected epoch), metrics.json,
val_predictions.csv (per-image logits + labels, fp32 without TF32), last.ckpt (resume state).
"""
from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import log
from .aug import cxr_augment
from .metrics import auroc, binary_report
from .nets import CXRNet, n_params
from .packio import load_pack
from .preprocess import CXR_MEAN, CXR_STD, cxr_steps
from .train_utils import (EMA, Budget, autocast, base_parser, elapsed, fmt_s, fp32_exact, init_from, load_weights,
                          lr_at, make_optimizer, save_checkpoint, save_weights, setup, torch_load, write_json)


def load_cls_data(path, task: str, dev, smoke: bool, seed: int):
    """-> dict(X uint8 [N,1,224,224] on dev, Y float [N,L] on dev, is_val bool np, ids, patients, source, labels)."""
    meta, a = load_pack(path, device=str(dev))
    if task == "pneumonia":
        X = torch.from_numpy(a["images"])
        Y = a["label"].astype(np.float32)[:, None]
        labels = ["Pneumonia"]
        source = np.zeros(len(Y), np.int64)
        src_names = ["kermany"]
    else:
        xa = torch.from_numpy(a["images_a"])
        xb = torch.from_numpy(a["images_b"]).to(dev)
        size = tuple(meta["size"])
        # 64 px images -> 224, as the runtime's resize step (bilinear, upsampling) would do
        xb = F.interpolate(xb[:, None].float() / 255.0, size=size, mode="bilinear", align_corners=False,
                           antialias=True)[:, 0].mul_(255).round_().clamp_(0, 255).to(torch.uint8).cpu()
        X = torch.cat([xa, xb])
        labels = list(meta["train_labels"]) if task == "findings" else ["Edema"]
        cols = [meta["findings"].index(lab) for lab in labels]
        Y = a["labels"][:, cols].astype(np.float32)
        source = a["source"].astype(np.int64)
        src_names = ["nih14-224", "nih14-64px"]
    is_val = a["is_val"].astype(bool)
    ids = list(meta["ids"])
    patients = list(meta.get("patients", ids))
    if smoke:  # tiny, but with both classes of the first label on each side
        rng = np.random.RandomState(seed)
        keep = []
        for side, n in ((False, 48), (True, 24)):
            for cls in (1, 0):
                cand = np.where((is_val == side) & (Y[:, 0] == cls))[0]
                keep += rng.permutation(cand)[: n // 2].tolist()
        keep = np.array(sorted(keep))
        X, Y, is_val, source = X[keep], Y[keep], is_val[keep], source[keep]
        ids = [ids[i] for i in keep]
        patients = [patients[i] for i in keep]
    return {"X": X[:, None].contiguous(), "Y": torch.from_numpy(Y), "is_val": is_val, "ids": ids,
            "patients": patients, "source": source, "src_names": src_names, "labels": labels, "meta": meta,
            "size": list(X.shape[-2:])}


@torch.no_grad()
def predict(model, X, dev, bs=256, amp=True):
    model.eval()
    out = []
    for s in range(0, len(X), bs):
        x = X[s:s + bs].to(dev, non_blocking=True).float().div_(255).sub_(CXR_MEAN).div_(CXR_STD)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        if amp:
            with autocast(dev):
                out.append(model(x).float().cpu())
        else:
            out.append(model(x).float().cpu())
    return torch.cat(out).numpy()


def summarize(Y, logits, labels, n_boot=0, seed=0):
    per = {}
    aucs = []
    for j, lab in enumerate(labels):
        if n_boot:
            per[lab] = binary_report(Y[:, j], logits[:, j], n_boot=n_boot, seed=seed)
            a = per[lab]["auroc"]
        else:
            a = auroc(Y[:, j], logits[:, j])
            per[lab] = a
        if not math.isnan(a):
            aucs.append(a)
    return (float(np.mean(aucs)) if aucs else float("nan")), per


def run(spec: dict):
    ap = base_parser(spec["description"], spec["minutes"], spec["epochs"])
    ap.add_argument("--init", default=spec.get("init"), help="weights .npz to initialise from (optional)")
    ap.add_argument("--lr", type=float, default=spec["lr"])
    ap.add_argument("--wd", type=float, default=spec.get("wd", 0.05))
    ap.add_argument("--batch", type=int, default=spec["batch"])
    ap.add_argument("--select", choices=["best", "last"], default=spec.get("select", "best"),
                    help="weights to keep: best val mean AUROC (EMA) or the final EMA")
    ap.add_argument("--ema", type=float, default=spec.get("ema", 0.998), help="EMA decay of the kept weights")
    ap.add_argument("--site-aug", action=argparse.BooleanOptionalAction, default=bool(spec.get("site_aug")),
                    help="add the site-shift augmentation (aug.SITE_DEFAULTS: window/LUT, blur/sharpen, frames, "
                         "text markers, wider zoom)")
    ap.add_argument("--label-smoothing", type=float, default=spec.get("label_smoothing", 0.0),
                    help="BCE targets y(1-e)+e/2 (against overconfident logits)")
    args = ap.parse_args()
    dev = setup(args)
    out = Path(args.out)
    g = torch.Generator(device=dev)
    g.manual_seed(args.seed)

    t = time.time()
    d = load_cls_data(args.data, spec["task"], dev, args.smoke, args.seed)
    labels, L = d["labels"], len(d["labels"])
    tr = torch.from_numpy(np.where(~d["is_val"])[0])
    va = torch.from_numpy(np.where(d["is_val"])[0])
    Xtr, Ytr = d["X"][tr].to(dev), d["Y"][tr].to(dev)
    Xva, Yva = d["X"][va], d["Y"][va].numpy()
    log(f"[data] {args.data}: train {len(tr)} val {len(va)} labels {labels} size {d['size']} "
        f"({time.time() - t:.1f}s, elapsed {elapsed():.0f}s)")
    pos = Ytr.sum(0)
    neg = len(Ytr) - pos
    pos_weight = (neg / pos.clamp(min=1)).clamp(max=spec.get("pos_weight_max", 20.0))
    log("[data] positives (train): " + ", ".join(f"{lab} {int(p)}" for lab, p in zip(labels, pos.tolist()))
        + f"; pos_weight {[round(v, 2) for v in pos_weight.tolist()]}")

    arch = {"kind": "CXRNet", "num_labels": L, "in_ch": 1, "widths": [32, 64, 128, 256], "blocks": [2, 2, 2, 2],
            "dropout": 0.2}
    model = CXRNet(L)
    init_msg = init_from(model, args.init, labels) if args.init else "init: none (from scratch)"
    log(f"[model] CXRNet {n_params(model) / 1e6:.2f}M params; {init_msg}")
    model.to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, args.lr, args.wd)
    ema = EMA(model, args.ema)
    bs = min(args.batch, len(tr))
    spe = max(len(tr) // bs, 1)
    epochs = args.epochs
    config = {"name": spec["name"], "arch": arch, "labels": labels, "task": "classification",
              "input": {"channels": 1, "size": d["size"], "ndim": 2},
              "preprocess": cxr_steps(d["size"], 1), "activation": "sigmoid",
              "train": {"data": Path(args.data).name, "lr": args.lr, "wd": args.wd, "batch": bs,
                        "select": args.select, "init": init_msg, "seed": args.seed,
                        "ema": args.ema, "site_aug": bool(args.site_aug), "label_smoothing": args.label_smoothing,
                        "pos_weight": [round(v, 4) for v in pos_weight.tolist()]}}

    init_report = None
    if spec.get("eval_init") and args.init and Path(args.init).exists():
        with fp32_exact():
            lg = predict(ema.model, Xva, dev, amp=False)
        init_report = {lab: binary_report(Yva[:, j], lg[:, j], n_boot=1000, seed=args.seed)
                       for j, lab in enumerate(labels)}
        log(f"[init] val of the init model (before fine-tuning): "
            + ", ".join(f"{k} AUROC {v['auroc']:.3f} CI {v['auroc_ci95'][0]:.2f}-{v['auroc_ci95'][1]:.2f}"
                        for k, v in init_report.items()))

    ckpt = out / "last.ckpt"
    start_epoch, p0, best, best_epoch, hist = 0, 0.0, -1.0, -1, []
    if args.resume and ckpt.exists():
        st = torch_load(ckpt, dev)
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        start_epoch, p0, best, best_epoch, hist = st["epoch"] + 1, st["p"], st["best"], st["best_epoch"], st["hist"]
        log(f"[resume] from epoch {start_epoch} p={p0:.3f} best {best:.4f}@{best_epoch}")
    budget = Budget(args.minutes, epochs, spe, spec.get("reserve_s", 20.0), p0)
    crit_pw = pos_weight.to(dev)

    p = p0
    epoch = start_epoch
    while p < 1.0 and epoch < epochs:
        model.train()
        t_ep = time.time()
        perm = torch.randperm(len(tr), device=dev, generator=g)
        tot, nb = torch.zeros((), device=dev), 0
        for step in range(spe):
            p = budget.progress(epoch, step)
            if p >= 1.0:
                break
            lr = lr_at(p, args.lr)
            for gr in opt.param_groups:
                gr["lr"] = lr
            idx = perm[step * bs:(step + 1) * bs]
            x = Xtr[idx].float().div_(255)
            x, _ = cxr_augment(x, g, res_p=spec.get("res_p", 0.2), site={} if args.site_aug else None)
            x = x.sub_(CXR_MEAN).div_(CXR_STD)
            if dev.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(dev):
                logit = model(x)
            tgt = Ytr[idx]
            if args.label_smoothing > 0:
                tgt = tgt * (1 - args.label_smoothing) + 0.5 * args.label_smoothing
            loss = F.binary_cross_entropy_with_logits(logit.float(), tgt, pos_weight=crit_pw)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            ema.update(model)
            tot += loss.detach()
            nb += 1
        p = budget.progress(epoch + 1, 0) if nb == spe else p
        lg = predict(ema.model, Xva, dev)
        m, per = summarize(Yva, lg, labels)
        vloss = float(F.binary_cross_entropy_with_logits(torch.from_numpy(lg), torch.from_numpy(Yva)))
        rec = {"epoch": epoch, "train_loss": float(tot) / max(nb, 1), "val_loss": vloss, "val_mean_auroc": m,
               "lr": lr_at(min(p, 1.0), args.lr), "p": p, "time_s": time.time() - t_ep, "elapsed_s": elapsed()}
        hist.append(rec)
        improved = m > best or (math.isnan(best) and not math.isnan(m))
        if improved:
            best, best_epoch = m, epoch
        if args.select == "best" and (improved or not (out / "best.weights.npz").exists()):
            save_weights(out / "best.weights.npz", ema.model, config, {"epoch": epoch, "val_mean_auroc": m})
        save_checkpoint(ckpt, model=model.state_dict(), ema=ema.model.state_dict(), ema_updates=ema.updates,
                        opt=opt.state_dict(), epoch=epoch, p=p, best=best, best_epoch=best_epoch, hist=hist)
        extra = "" if L == 1 else " | " + " ".join(f"{k[:6]} {v:.2f}" for k, v in per.items())
        log(f"[ep {epoch:3d}] loss {rec['train_loss']:.4f} val_loss {vloss:.4f} val_AUROC {m:.4f}"
            f"{' *' if improved else ''} lr {rec['lr']:.2e} p {p:.2f} {rec['time_s']:.1f}s "
            f"elapsed {fmt_s(elapsed())}{extra}")
        epoch += 1
    if args.select == "last" or not (out / "best.weights.npz").exists():
        save_weights(out / "best.weights.npz", ema.model, config, {"epoch": epoch - 1, "selected": "last"})

    # ---- final evaluation of the kept weights, fp32, no TF32
    cfg, sd = load_weights(out / "best.weights.npz")
    final = CXRNet(L)
    final.load_state_dict(sd)
    final.to(dev)
    with fp32_exact():
        lg = predict(final, Xva, dev, amp=False)
    mean_auc, per = summarize(Yva, lg, labels, n_boot=1000, seed=args.seed)
    vids = [d["ids"][i] for i in va.tolist()]
    vpat = [d["patients"][i] for i in va.tolist()]
    vsrc = [d["src_names"][int(d["source"][i])] for i in va.tolist()]
    with open(out / "val_predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "patient", "source"] + [f"label_{lab}" for lab in labels] + [f"logit_{lab}" for lab in labels])
        for i in range(len(vids)):
            w.writerow([vids[i], vpat[i], vsrc[i]] + [int(v) for v in Yva[i]] + [f"{v:.6f}" for v in lg[i]])
    by_source = {}
    for s_i, s_name in enumerate(d["src_names"]):
        msk = d["source"][va.numpy()] == s_i
        if len(d["src_names"]) > 1 and msk.any():
            by_source[s_name] = {lab: {"n": int(msk.sum()), "positives": int(Yva[msk, j].sum()),
                                       "auroc": auroc(Yva[msk, j], lg[msk, j])} for j, lab in enumerate(labels)}
    metrics = {
        "model": spec["name"], "smoke": args.smoke, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__, "selected": args.select, "selected_epoch": cfg.get("epoch"),
        "best_epoch": best_epoch, "epochs_run": epoch, "train_images": len(tr), "val_images": len(va),
        "val_mean_auroc": mean_auc, "val": per, "val_by_source": by_source, "init_model_val": init_report,
        "split": "patient-level, deterministic (see pack meta)", "threshold_note": "accuracy/sens/spec at p=0.5 "
        "of the uncalibrated sigmoid (class-weighted loss shifts it); calibration is done later",
        "history": hist, "elapsed_s": elapsed(), "config": config}
    write_json(out / "metrics.json", metrics)
    for lab, r in per.items():
        log(f"[final] {lab:20s} AUROC {r['auroc']:.4f} (95% CI {r['auroc_ci95'][0]:.3f}-{r['auroc_ci95'][1]:.3f}) "
            f"acc {r['accuracy']:.3f} sens {r['sensitivity']:.3f} spec {r['specificity']:.3f} ECE {r['ece15']:.3f} "
            f"n={r['n']} pos={r['positives']}")
    log(f"[done] {spec['name']}: val mean AUROC {mean_auc:.4f}; wrote {out}/best.weights.npz metrics.json "
        f"val_predictions.csv in {fmt_s(elapsed())}")
