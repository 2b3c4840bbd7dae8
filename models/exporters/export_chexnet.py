#!/usr/bin/env python3
"""Export a CheXNet-style DenseNet-121 (14 NIH ChestX-ray14 findings, sigmoid) to a medvision package.

Checkpoint: a state dict, or a dict holding "state_dict", in either layout:
  * torchvision: features.conv0.weight ..., classifier.weight / classifier.bias
  * the common CheXNet re-implementation layout (nn.DataParallel around a wrapper holding
    `densenet121`, classifier = Sequential(Linear, Sigmoid)):
    module.densenet121.features.denseblock1.denselayer1.norm.1.weight, ...,
    module.densenet121.classifier.0.weight
    'module.' and 'densenet121.' are stripped, pre-0.3 torchvision DenseNet keys (norm.1 -> norm1)
    are renamed as torchvision's own loader does, classifier.0 -> classifier.
The exported model returns logits; the sigmoid moves into the manifest (output.activation).

Preprocessing (ImageNet statistics, as CheXNet): CheXNet's paper downscales to 224 x 224; its
popular re-implementation tests with Resize(256) + TenCrop(224) and averages the 10 crops.
medvision runs one crop, so:
  --crop none (default): resize stretch 224 x 224 (the paper's single view)
  --crop 256: Resize(256) + CenterCrop(224) (the centre crop of the TenCrop, without the average)
"""
from __future__ import annotations

import argparse

import _package as P

NIH_LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
              "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
              "Pleural_Thickening", "Hernia"]


def convert_state_dict(sd):
    sd = P.strip_prefixes(sd, ["module.", "densenet121.", "model."])
    sd = P.fix_old_densenet_keys(sd)
    # Sequential(Linear, Sigmoid) classifier -> Linear
    return {("classifier." + k[len("classifier.0."):] if k.startswith("classifier.0.") else k): v
            for k, v in sd.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    P.add_common_args(ap, default_name="chexnet")
    P.add_scale_args(ap)
    ap.add_argument("--crop", choices=["none", "256"], default="none",
                    help="'none': stretch to 224 (default); '256': Resize(256) + CenterCrop(224)")
    ap.add_argument("--labels", default=",".join(NIH_LABELS),
                    help="comma-separated labels in output order (default: CheXNet's 14)")
    args = ap.parse_args(argv)
    P.torch.set_num_threads(max(1, min(2, P.torch.get_num_threads())))

    labels = [s for s in args.labels.split(",") if s]
    sd = convert_state_dict(P.state_dict_of(P.load_checkpoint(args.checkpoint)))
    model = P.build_torchvision("densenet121", len(labels))
    P.load_strict(model, sd, "densenet121 (CheXNet)")

    if args.crop == "none":
        geometry = [{"op": "resize", "mode": "stretch", "size": [224, 224]}]
    else:
        # Resize(256) scales the shorter side to 256 (torchvision truncates the longer), which is
        # medvision's resize center_crop; the centre 224 then comes from center_crop.
        geometry = [{"op": "resize", "mode": "center_crop", "size": [256, 256]},
                    {"op": "center_crop", "size": [224, 224]}]
    steps = ([{"op": "monochrome"}, P.scale_step(args.scale, args.percentile_low,
                                                 args.percentile_high)]
             + geometry
             + [{"op": "channels", "channels": 3},
                {"op": "normalize", "mean": P.IMAGENET_MEAN, "std": P.IMAGENET_STD}])
    return P.write_package(
        eager=P.wrap("densenet121", model), out=args.out, name=args.name, version=args.version,
        labels=labels, in_channels=3, size=224, preprocess=steps, activation="sigmoid",
        intended_use=args.intended_use, description=args.description,
        modalities=[m for m in args.modalities.split(",") if m],
        provenance={"source": args.source or "CheXNet-style DenseNet-121 checkpoint "
                    "(Rajpurkar et al. 2017, arXiv:1711.05225)",
                    "license": args.license, "architecture": "densenet121",
                    "training_data": "NIH ChestX-ray14 (per the checkpoint's authors)",
                    "reference_preprocessing": ("PIL convert('RGB'), ToTensor, " +
                                                ("Resize((224, 224))" if args.crop == "none" else
                                                 "Resize(256), CenterCrop(224)") +
                                                " with antialias=True on the float tensor, "
                                                "Normalize(ImageNet); single crop, no TenCrop"),
                    "scale": args.scale},
        exporter="export_chexnet.py")


if __name__ == "__main__":
    main()
