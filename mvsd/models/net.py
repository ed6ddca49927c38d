"""One converter's network: the visual encoder and the U-Net denoiser, built from a spec."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mvsd.audio import StftConfig
from mvsd.config import ModelConfig, SizeConfig
from mvsd.models.unet import UNet, UNetConfig
from mvsd.models.visual import VisualConfig, VisualEncoder

DIRECTIONS = ("reverb", "dereverb")


@dataclass(frozen=True)
class ConverterSpec:
    """Everything that defines a converter's computation; stored in every checkpoint."""

    direction: str  # reverb (dry -> room) | dereverb (room -> dry)
    size: str
    widths: SizeConfig
    process: str
    flow_sigma: float
    sampler: str
    steps: int
    segment_seconds: float
    overlap_seconds: float
    max_batch: int
    image_size: tuple[int, int]
    use_depth: bool
    stft: StftConfig = StftConfig()

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {DIRECTIONS}")

    @classmethod
    def from_model_config(cls, direction: str, m: ModelConfig) -> ConverterSpec:
        return cls(
            direction=direction,
            size=m.size,
            widths=m.sizes[m.size],
            process=m.process,
            flow_sigma=m.flow_sigma,
            sampler=m.sampler,
            steps=m.steps,
            segment_seconds=m.segment_seconds,
            overlap_seconds=m.overlap_seconds,
            max_batch=m.max_batch,
            image_size=m.image_size,
            use_depth=m.use_depth,
        )


class MVSDNet(nn.Module):
    """``forward(x_t, source, t, image)``; ``encode_image`` once, then ``denoise`` per step."""

    def __init__(self, spec: ConverterSpec):
        super().__init__()
        w = spec.widths
        self.visual = VisualEncoder(
            VisualConfig(w.visual_widths, w.embed_dim, 4 if spec.use_depth else 3, spec.image_size)
        )
        self.unet = UNet(
            UNetConfig(w.unet_channels, w.cond_dim, w.attn_heads), w.embed_dim, self.visual.token_dim
        )

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3 or 4, H, W)`` -> ``(embedding (B, E), tokens (B, M, D))``."""
        return self.visual(image)

    def denoise(
        self, x: torch.Tensor, source: torch.Tensor, t: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        return self.unet(x, source, t, *cond)

    def forward(
        self, x: torch.Tensor, source: torch.Tensor, t: torch.Tensor, image: torch.Tensor
    ) -> torch.Tensor:
        return self.denoise(x, source, t, self.encode_image(image))
