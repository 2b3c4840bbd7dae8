#!/usr/bin/env python3
"""Export a torchxrayvision-style DenseNet-121 (1 input channel, 18 outputs) to a medvision package.

Checkpoint: the model's state dict (xrv.models.DenseNet(weights=...).state_dict(), torch.save'd;
xrv's own .pt files pickle the whole module and need torchxrayvision to unpickle: load it there
and save the state dict), or a dict holding "state_dict" (and optionally "pathologies"). The
keys are torchvision's DenseNet keys with features.conv0 of shape [64, 1, 7, 7] and
classifier of [18, 1024]; an `op_threshs` buffer, if present, is kept in provenance only.

Outputs are logits; output.activation is sigmoid, as xrv with apply_sigmoid. xrv's optional
operating-point normalisation (op_norm with op_threshs) is NOT applied: its values are recorded
under provenance.op_threshs (medvision's calibration/thresholds are the place for such a step).

Preprocessing, xrv -> manifest steps:
  xrv.datasets.normalize(img, 255): (2 * img / 255 - 1) * 1024  -> normalize range [0, 255] -> [-1024, 1024]
  one channel (xrv: img[:, :, 0] or mean)                       -> channels 1 (BT.601 luma for colour)
  XRayCenterCrop() + XRayResizer(224) (skimage, crop first)     -> resize center_crop 224 (torch
                                                                   antialiased bilinear, resize first)
see docs/exporters.md for the measured deviation of the resize.
"""
from __future__ import annotations

import argparse

import _package as P

XRV_LABELS = ["Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema",
              "Emphysema", "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening",
              "Cardiomegaly", "Nodule", "Mass", "Hernia", "Lung Lesion", "Fracture",
              "Lung Opacity", "Enlarged Cardiomediastinum"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_common_args(ap, default_name="xrv-densenet121")
    ap.add_argument("--maxval", type=float, default=255.0,
                    help="xrv.datasets.normalize's maxval: the source white level (255 for "
                         "8-bit; 2**BitsStored - 1 for DICOM, as xrv's read_xray_dcm)")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    P.torch.set_num_threads(max(1, min(2, P.torch.get_num_threads())))

    ck = P.load_checkpoint(args.checkpoint)
    sd = P.strip_prefixes(P.state_dict_of(ck), ["module.", "model."])
    op_threshs = sd.pop("op_threshs", None)
    sd = P.fix_old_densenet_keys(sd)
    labels = [str(x) for x in ck.get("pathologies", XRV_LABELS)] if "state_dict" in ck \
        else list(XRV_LABELS)
    # xrv marks outputs a weight set was not trained for with "" (e.g. the NIH-only weights).
    labels = [lab if lab else f"unused-{i}" for i, lab in enumerate(labels)]
    model = P.build_torchvision("densenet121", len(labels), in_channels=1)
    P.load_strict(model, sd, "torchxrayvision densenet121")

    steps = [
        {"op": "monochrome"},
        {"op": "channels", "channels": 1},
        {"op": "normalize", "mode": "range", "min": 0, "max": args.maxval, "to": [-1024, 1024]},
        {"op": "resize", "mode": "center_crop", "size": [args.size, args.size]},
    ]
    prov = {"source": args.source or "torchxrayvision DenseNet-121 (Cohen et al., "
            "https://github.com/mlmed/torchxrayvision)",
            "license": args.license, "architecture": "densenet121 (1 input channel)",
            "reference_preprocessing": (f"xrv.datasets.normalize(img, {args.maxval:g}), one channel, "
                                        "torchvision Resize(224) + CenterCrop(224) with "
                                        "antialias=True (xrv: XRayCenterCrop + XRayResizer, skimage)"),
            "op_norm_applied": False}
    if op_threshs is not None:
        prov["op_threshs"] = [float(v) for v in op_threshs.flatten()]
    return P.write_package(
        eager=P.wrap("densenet121", model), out=args.out, name=args.name, version=args.version,
        labels=labels, in_channels=1, size=args.size, preprocess=steps, activation="sigmoid",
        intended_use=args.intended_use, description=args.description,
        modalities=[m for m in args.modalities.split(",") if m], provenance=prov,
        exporter="export_xrv.py")


if __name__ == "__main__":
    main()
