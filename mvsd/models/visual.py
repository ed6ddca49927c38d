"""The visual encoder: a ResNet-18-style network over RGB (+ depth) room images.

It gives the converters two things (MVSD §3.2): a global embedding ``(B, embed_dim)`` that
modulates every U-Net level (FiLM), and a grid of feature tokens ``(B, N, token_dim)`` that audio
features attend to. The layout is ResNet-18's (He et al. 2016): a stem, then four stages of two
basic blocks, the last three halving the resolution. Widths scale with the model size; ``base``
uses ResNet-18's own 64-128-256-512. It trains from scratch by default; ``load_pretrained`` takes
weights from a local file (torchvision's ResNet-18 state-dict layout works) — nothing is
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VisualConfig:
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # channels of the four stages
    embed_dim: int = 256
    in_channels: int = 4  # RGB + depth; depth is zero (and flagged) when absent
    image_size: tuple[int, int] = (96, 128)  # (H, W) the images are resized to


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet's basic block)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class VisualEncoder(nn.Module):
    def __init__(self, cfg: VisualConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        # Attribute names follow torchvision's resnet18 so its state dict loads (conv1, bn1, layer1..4).
        self.conv1 = nn.Conv2d(cfg.in_channels, w[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = w[0]
        for i, cout in enumerate(w):
            stride = 1 if i == 0 else 2
            setattr(
                self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))
            )
            cin = cout
        self.embed = nn.Linear(w[-1], cfg.embed_dim)

    @property
    def token_dim(self) -> int:
        return self.cfg.widths[-1]

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (B, C, H, W)`` in [0, 1] -> ``(embedding (B, E), tokens (B, N, token_dim))``.

        RGB-only input gets a zero depth channel when the encoder expects depth.
        """
        if image.shape[1] == 3 and self.cfg.in_channels == 4:
            image = torch.cat([image, torch.zeros_like(image[:, :1])], dim=1)
        x = (image - 0.5) / 0.25  # roughly zero-mean, unit-variance pixels
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, C4, H/32, W/32)
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C4)
        return self.embed(tokens.mean(dim=1)), tokens

    def load_pretrained(self, path: str | Path) -> list[str]:
        """Load matching weights from a local state-dict file (``.safetensors`` or a torch file,
        read with ``weights_only=True``). The first convolution's RGB filters are copied and the
        depth filter starts at their mean. Returns the names of parameters that were not loaded."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such pretrained weights file")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.state_dict()
        loaded = {}
        for name, value in state.items():
            if name == "conv1.weight" and value.shape[1] == 3 and own[name].shape[1] == 4:
                value = torch.cat([value, value.mean(dim=1, keepdim=True)], dim=1)
            if name in own and own[name].shape == value.shape:
                loaded[name] = value
        self.load_state_dict(loaded, strict=False)
        return sorted(set(own) - set(loaded))
