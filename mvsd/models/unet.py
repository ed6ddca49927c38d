"""The denoiser: a 2-D U-Net over (frequency, time), conditioned on a room image.

Inputs are the diffusion state ``x_t``, the physical first estimate the process starts from and
the converter's input spectrogram, each ``(B, 2, F, N)`` (real, imag), stacked as 6 channels
(MVSD uses the source spectrogram as content input; :mod:`mvsd.models.room` makes the estimate). The
condition enters in two ways (MVSD §3.2):

* every residual block is FiLM-modulated (Perez et al. 2018) by one vector that sums the
  diffusion-time embedding and the image embedding — so the picture steers every level;
* cross-attention from audio features to the image's feature tokens at the deepest encoder level
  and the deepest decoder level, where the grid is smallest (attention cost ~ F·N/4^L · tokens).

The network knows nothing of the diffusion process: it maps (x_t, source, t, condition) to a
tensor shaped like x_t, whose meaning (noise, velocity) the process decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    channels: tuple[int, ...] = (16, 32, 64)  # per level; each level halves F and N
    cond_dim: int = 128  # width of the FiLM condition vector
    attn_heads: int = 2
    groups: int = 8  # GroupNorm groups (capped by the channel count)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of continuous times ``t (B,)`` in [0, 1] -> ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class _GroupNorm(nn.GroupNorm):
    """GroupNorm on a contiguous copy: PyTorch's CPU kernels for channels-last input (the
    convolutions' layout here) are several times slower, the backward pass most."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)


def _norm(ch: int, groups: int) -> nn.GroupNorm:
    return _GroupNorm(math.gcd(groups, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the condition scales and shifts the second norm (FiLM)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, groups: int):
        super().__init__()
        self.norm1 = _norm(cin, groups)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * cout)
        self.norm2 = _norm(cout, groups)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: stable early training
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class CrossAttention(nn.Module):
    """Audio features (queries) attend to image tokens (keys, values); residual."""

    def __init__(self, ch: int, token_dim: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = _norm(ch, groups)
        self.q = nn.Linear(ch, ch, bias=False)
        self.kv = nn.Linear(token_dim, 2 * ch, bias=False)
        self.out = nn.Linear(ch, ch)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        b, c, f, n = x.shape
        h = self.heads
        q = self.q(self.norm(x).flatten(2).transpose(1, 2))  # (B, F*N, C)
        k, v = self.kv(tokens).chunk(2, dim=-1)  # (B, M, C) each
        split = lambda y: y.unflatten(-1, (h, c // h)).transpose(1, 2)  # noqa: E731  (B, h, L, C/h)
        a = F.scaled_dot_product_attention(split(q), split(k), split(v))  # (B, h, F*N, C/h)
        a = self.out(a.transpose(1, 2).flatten(2))  # (B, F*N, C)
        return x + a.transpose(1, 2).reshape(b, c, f, n)


class UNet(nn.Module):
    def __init__(
        self, cfg: UNetConfig, embed_dim: int, token_dim: int, in_channels: int = 6, out_channels: int = 2
    ):
        super().__init__()
        self.cfg = cfg
        ch, cd, g = cfg.channels, cfg.cond_dim, cfg.groups
        self.time_mlp = nn.Sequential(nn.Linear(cd, cd), nn.SiLU(), nn.Linear(cd, cd))
        self.image_proj = nn.Linear(embed_dim, cd)
        self.stem = nn.Conv2d(in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(ResBlock(a, b, cd, g) for a, b in zip(ch[:1] + ch[:-1], ch))
        self.downsample = nn.ModuleList(nn.Conv2d(c, c, 3, stride=2, padding=1) for c in ch[:-1])
        self.attn_down = CrossAttention(ch[-1], token_dim, cfg.attn_heads, g)
        self.mid = ResBlock(ch[-1], ch[-1], cd, g)
        self.attn_up = CrossAttention(ch[-1], token_dim, cfg.attn_heads, g)
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(c, c, 2, stride=2) for c in ch[-2::-1])
        self.up_blocks = nn.ModuleList(
            ResBlock(2 * a, b, cd, g) for a, b in zip(ch[::-1], ch[-2::-1] + ch[:1])
        )
        self.head = nn.Sequential(_norm(ch[0], g), nn.SiLU(), nn.Conv2d(ch[0], out_channels, 3, padding=1))
        # Zero output at initialisation: an untrained flow leaves its start (the physical first
        # estimate) unchanged, so refinement can only learn to improve on it.
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        # Channels-last weights make every convolution run (and return) channels-last, which
        # oneDNN computes 1.4x faster on CPU at these widths (training step, BENCHMARKS.md
        # "Throughput"); the numbers are the same up to float rounding, and checkpoints store
        # contiguous tensors (loading copies into these weights, keeping their layout).
        self.to(memory_format=torch.channels_last)

    @property
    def multiple(self) -> int:
        """F and N must be multiples of this (the model pads N itself)."""
        return 2 ** (len(self.cfg.channels) - 1)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor,
        t: torch.Tensor,
        embedding: torch.Tensor,
        tokens: torch.Tensor,
        given: torch.Tensor,
    ) -> torch.Tensor:
        """``x, source, given (B, 2, F, N)``, ``t (B,)``, ``embedding (B, E)``, ``tokens (B, M, D)``
        -> ``(B, 2, F, N)``. ``source`` is the first estimate the process starts from, ``given``
        the converter's input (dry speech for R, reverberant speech for D)."""
        n = x.shape[-1]
        pad = (-n) % self.multiple  # time frames up to a multiple of 2^levels; cropped at the end
        h = self.stem(F.pad(torch.cat([x, source, given], dim=1), (0, pad)))
        cond = self.time_mlp(timestep_embedding(t, self.cfg.cond_dim)) + self.image_proj(embedding)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, cond)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.attn_up(self.mid(self.attn_down(h, tokens), cond), tokens)
        for i, block in enumerate(self.up_blocks):
            if i > 0:
                h = self.upsample[i - 1](h)
            h = block(torch.cat([h, skips.pop()], dim=1), cond)
        return self.head(h)[..., :n]
