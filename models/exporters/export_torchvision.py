#!/usr/bin/env python3
"""Export a torchvision classifier checkpoint to a medvision model package.

Input: a torch.save'd dict {"state_dict": ..., "class_names": [...], "architecture": "efficientnet_b0"}
(the seed pneumonia service's format). Architectures: efficientnet_b0..b7, resnet18/34/50,
densenet121, mobilenet_v3_small/large ("mobilenet_v3" alone: the state dict decides).

The package reproduces the service's preprocessing, torchvision style:
    img.convert("RGB") -> ToTensor() -> Resize((224, 224)) -> Normalize(ImageNet mean, std)
as manifest steps:
    monochrome -> scale (fixed 0..255 by default) -> resize stretch 224 -> channels 3 -> normalize
`--scale fixed` (0..255) is exactly ToTensor's /255 for 8-bit sources. For DICOM (10-16 bit) use
`--scale minmax` or `--scale percentile`: a 0..255 window would saturate them. See docs/exporters.md.

    /usr/bin/python3 models/exporters/export_torchvision.py --checkpoint ck.pt --out pkg/ \
        --name cxr-pneumonia-effnet --version 1.0.0
"""
from __future__ import annotations

import argparse

import _package as P


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_common_args(ap, default_name="torchvision-classifier")
    P.add_scale_args(ap)
    ap.add_argument("--architecture", default=None,
                    help="override the checkpoint's 'architecture' field")
    ap.add_argument("--multilabel", action="store_true",
                    help="independent labels (sigmoid); default: mutually exclusive (softmax)")
    ap.add_argument("--size", type=int, default=224, help="input size (square)")
    args = ap.parse_args(argv)
    P.torch.set_num_threads(max(1, min(2, P.torch.get_num_threads())))

    ck = P.load_checkpoint(args.checkpoint)
    labels = ck.get("class_names")
    if not isinstance(labels, (list, tuple)) or not labels:
        raise SystemExit(f"{args.checkpoint}: 'class_names' (a list of label strings) is required")
    labels = [str(x) for x in labels]
    arch = args.architecture or ck.get("architecture")
    if not arch:
        raise SystemExit(f"{args.checkpoint}: no 'architecture' (or pass --architecture)")
    sd = P.strip_prefixes(P.state_dict_of(ck), ["module.", "model."])

    candidates = P.ALIASES.get(arch, [arch])
    errors = []
    for cand in candidates:
        model = P.build_torchvision(cand, len(labels))
        if cand.startswith("densenet"):
            sd = P.fix_old_densenet_keys(sd)
        try:
            P.load_strict(model, sd, cand)
        except SystemExit as e:
            errors.append(str(e))
            continue
        arch = cand
        break
    else:
        raise SystemExit("\n".join(errors))
    if not args.multilabel and len(labels) < 2:
        raise SystemExit("one label with softmax is meaningless: pass --multilabel (sigmoid)")

    steps = [
        {"op": "monochrome"},
        P.scale_step(args.scale, args.percentile_low, args.percentile_high),
        {"op": "resize", "mode": "stretch", "size": [args.size, args.size]},
        {"op": "channels", "channels": 3},
        {"op": "normalize", "mean": P.IMAGENET_MEAN, "std": P.IMAGENET_STD},
    ]
    return P.write_package(
        eager=P.wrap(arch, model), out=args.out, name=args.name, version=args.version,
        labels=labels, in_channels=3, size=args.size, preprocess=steps,
        activation="sigmoid" if args.multilabel else "softmax",
        intended_use=args.intended_use, description=args.description,
        modalities=[m for m in args.modalities.split(",") if m],
        provenance={"source": args.source or "torchvision classifier checkpoint",
                    "license": args.license, "architecture": arch,
                    "checkpoint_format": "{state_dict, class_names, architecture}",
                    "reference_preprocessing": "PIL convert('RGB'), ToTensor, Resize((224, 224), "
                    "antialias=True) on the float tensor, Normalize(ImageNet)",
                    "scale": args.scale},
        exporter="export_torchvision.py")


if __name__ == "__main__":
    main()
