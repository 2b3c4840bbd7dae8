"""Network definitions (pure torch, TorchScript-friendly).

CXRNet -- the classifier for cxr-pneumonia / cxr-findings / cxr-edema.
  A ResNet-18 layout at half width (32-64-128-256 channels, BasicBlocks [2,2,2,2], BN, ReLU),
  1 input channel, ~2.8 M parameters (~11 MB float32).
  Why not torchvision's EfficientNet-B0 (4.0 M params without the ImageNet head, ~16 MB):
    * no pretrained weights are available, and from scratch on ~4.4k images in a few minutes a
      plain residual CNN with BatchNorm converges faster and more reliably than EfficientNet
      (depthwise + squeeze-excite + stochastic depth were tuned for long ImageNet schedules with
      heavy regularisation);
    * dense 3x3 convs run on tensor cores (bf16, channels_last); depthwise convs are memory-bound,
      so this net does more epochs in the same H100 minutes;
    * smaller file (11 MB vs 16 MB), no torchvision dependency on the GPU box, trivially
      scriptable, and Grad-CAM on the 7x7 last-stage maps works the same way.
  features(x) -> last conv stage [N, 256, H/32, W/32]; head(f) -> global average pool + linear.

UNet2D -- cxr-lungs: 5-level U-Net (16-32-64-128-256), BN + ReLU, transposed-conv upsampling.
UNet3D -- brain-tumour: 5-level 3D U-Net (16-32-64-128-192), InstanceNorm + LeakyReLU.
  Both U-Nets export explain_forward(x) -> (logits, bottleneck activations): the segmentation
  Grad-CAM of medvision differentiates a class's logits summed over its predicted region with
  respect to the bottleneck (the deepest encoder block, 1/16 of the input), as Vinogradova et al.
  (AAAI 2020, "Towards interpretable semantic segmentation via gradient-weighted class
  activation mapping") do; skip connections make any later layer a mix of resolutions.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.short = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.short(x))


class CXRNet(nn.Module):
    def __init__(self, num_labels: int, in_ch: int = 1, widths=(32, 64, 128, 256), blocks=(2, 2, 2, 2),
                 dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1))
        layers = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            blks = []
            for j in range(n):
                blks.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
            layers.append(nn.Sequential(*blks))
        self.layers = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_labels)
        self.num_features = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # zero-init the last BN of each residual branch
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))

    @torch.jit.export
    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(f.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _block2d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _block3d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, 1, 1, bias=False), nn.InstanceNorm3d(cout, affine=True),
                         nn.LeakyReLU(0.01, inplace=True),
                         nn.Conv3d(cout, cout, 3, 1, 1, bias=False), nn.InstanceNorm3d(cout, affine=True),
                         nn.LeakyReLU(0.01, inplace=True))


class UNet2D(nn.Module):
    def __init__(self, in_ch: int = 1, num_classes: int = 4, widths=(16, 32, 64, 128, 256)):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = in_ch
        for w in widths:
            self.enc.append(_block2d(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(widths) - 1, 0, -1):
            self.up.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 2, 2))
            self.dec.append(_block2d(2 * widths[i - 1], widths[i - 1]))
        self.out = nn.Conv2d(widths[0], num_classes, 1)
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.explain_forward(x)[0]

    @torch.jit.export
    def explain_forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, bottleneck activations); forward() is its first element."""
        skips: List[torch.Tensor] = []
        for i, blk in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = blk(x)
            skips.append(x)
        bottleneck = x
        n = len(skips)
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = up(x)
            x = dec(torch.cat([x, skips[n - 2 - i]], dim=1))
        return self.out(x), bottleneck


class UNet3D(nn.Module):
    def __init__(self, in_ch: int = 2, num_classes: int = 1, widths=(16, 32, 64, 128, 192)):
        super().__init__()
        self.enc = nn.ModuleList()
        cin = in_ch
        for w in widths:
            self.enc.append(_block3d(cin, w))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(widths) - 1, 0, -1):
            self.up.append(nn.ConvTranspose3d(widths[i], widths[i - 1], 2, 2))
            self.dec.append(_block3d(2 * widths[i - 1], widths[i - 1]))
        self.out = nn.Conv3d(widths[0], num_classes, 1)
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.explain_forward(x)[0]

    @torch.jit.export
    def explain_forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(logits, bottleneck activations); forward() is its first element."""
        skips: List[torch.Tensor] = []
        for i, blk in enumerate(self.enc):
            if i > 0:
                x = F.max_pool3d(x, 2)
            x = blk(x)
            skips.append(x)
        bottleneck = x
        n = len(skips)
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            x = up(x)
            x = dec(torch.cat([x, skips[n - 2 - i]], dim=1))
        return self.out(x), bottleneck


def build(config: dict) -> nn.Module:
    """Build a network from the `arch` dict stored with the weights."""
    kind = config["kind"]
    if kind == "CXRNet":
        return CXRNet(config["num_labels"], config.get("in_ch", 1), tuple(config.get("widths", (32, 64, 128, 256))),
                      tuple(config.get("blocks", (2, 2, 2, 2))), config.get("dropout", 0.2))
    if kind == "UNet2D":
        return UNet2D(config.get("in_ch", 1), config["num_classes"], tuple(config["widths"]))
    if kind == "UNet3D":
        return UNet3D(config.get("in_ch", 2), config["num_classes"], tuple(config["widths"]))
    raise ValueError(kind)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
