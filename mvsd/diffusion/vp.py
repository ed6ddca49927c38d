"""Variance-preserving diffusion with noise prediction — the MVSD objective (DDPM, Ho et al. 2020).

The target spectrogram ``x0`` is noised as ``x_t = sqrt(ᾱ(t)) x0 + sqrt(1 - ᾱ(t)) ε`` (Ho et al.
Eq. 4) with the cosine schedule ``ᾱ(t) = cos²((t + s)/(1 + s) · π/2)`` (Nichol & Dhariwal 2021,
Eq. 17) over continuous ``t`` in [0, 1]; the network predicts ``ε`` (Eq. 14) given ``x_t``, the
source spectrogram and the image. Sampling starts from pure noise at ``t = 1``.

One sampler covers DDPM and DDIM: the generalised step of Song et al. 2021 (Eq. 12) with
``η = 1`` is DDPM's ancestral step over any sub-sequence of times, ``η = 0`` is deterministic DDIM.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mvsd import rng

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class VPDiffusion:
    name = "vp"
    samplers = ("ddim", "ddpm")
    default_sampler = "ddim"

    def __init__(self, s: float = 0.008, t_min: float = 1e-3, max_alpha_bar: float = 1.0 - 1e-5):
        self.s, self.t_min, self.max_alpha_bar = s, t_min, max_alpha_bar

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        f = lambda u: torch.cos((u + self.s) / (1 + self.s) * math.pi / 2) ** 2  # noqa: E731
        ab = f(t) / f(torch.zeros_like(t))
        return ab.clamp(1e-4, self.max_alpha_bar)  # never exactly 0 or 1: x0 and ε stay recoverable

    def sample_times(
        self, batch: int, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.t_min + (1 - self.t_min) * rng.rand(batch, device=device, generator=generator)

    def _coef(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self.alpha_bar(t)[:, None, None, None]
        return ab.sqrt(), (1 - ab).sqrt()

    def training_pair(
        self, target: torch.Tensor, source: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, what the network should output)`` for spectrograms ``(B, 2, F, N)``."""
        a, sigma = self._coef(t)
        return a * target + sigma * noise, noise

    def estimate_target(
        self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """One-step estimate of x0 from a noise prediction (Ho et al. Eq. 15)."""
        a, sigma = self._coef(t)
        return (x_t - sigma * output) / a

    def sample(
        self,
        model_fn: ModelFn,
        source: torch.Tensor,
        steps: int,
        generator: torch.Generator | None = None,
        sampler: str = "ddim",
    ) -> torch.Tensor:
        """Generate x0 in ``steps`` network evaluations (``sampler`` ``ddim`` or ``ddpm``)."""
        if sampler not in self.samplers:
            raise ValueError(
                f"unknown sampler {sampler!r} for {self.name}; valid: {', '.join(self.samplers)}"
            )
        eta = 1.0 if sampler == "ddpm" else 0.0
        x = rng.randn(*source.shape, generator=generator, device=source.device, dtype=source.dtype)
        times = torch.linspace(1.0, 0.0, steps + 1, device=source.device)
        for t, s in zip(times[:-1], times[1:]):
            tb = t.expand(source.shape[0])
            eps = model_fn(x, tb)
            ab_t, ab_s = self.alpha_bar(t), self.alpha_bar(s) if s > 0 else torch.tensor(1.0, device=x.device)
            x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
            var = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)  # Song et al. Eq. 16
            x = ab_s.sqrt() * x0 + (1 - ab_s - var).clamp(min=0).sqrt() * eps
            if eta > 0 and s > 0:
                x = x + var.sqrt() * rng.randn(*x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x
