"""A flow from the source spectrogram to the target (a Brownian-bridge-like path, flow matching).

Instead of starting from pure noise, generation starts from the *source* — the dry speech for the
reverberator, the reverberant speech for the dereverberator — since the two differ only by the
room. Along the straight path ``x_t = (1 - t) x_0 + t x_1`` with ``x_0 = source + σ ε`` and
``x_1 = target`` (rectified flow / conditional flow matching: Liu et al. 2023, Lipman et al. 2023,
Eq. 22-23), the network regresses the constant velocity ``x_1 - x_0``; a few Euler or Heun steps
then carry the source to the target. The small ``σ`` keeps the start distribution non-degenerate
and makes the sampler's randomness (a seed) meaningful.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mvsd import rng

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SourceFlow:
    name = "flow"
    samplers = ("euler", "heun")
    default_sampler = "euler"

    def __init__(self, sigma: float = 0.05):
        self.sigma = sigma

    def sample_times(
        self, batch: int, device: torch.device, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return rng.rand(batch, device=device, generator=generator)

    def start(self, source: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return source + self.sigma * noise

    def training_pair(
        self, target: torch.Tensor, source: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, velocity)`` for spectrograms ``(B, 2, F, N)``."""
        x0 = self.start(source, noise)
        tt = t[:, None, None, None]
        return (1 - tt) * x0 + tt * target, target - x0

    def estimate_target(
        self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """One-step estimate of the target: follow the predicted velocity to ``t = 1``."""
        return x_t + (1 - t)[:, None, None, None] * output

    def sample(
        self,
        model_fn: ModelFn,
        source: torch.Tensor,
        steps: int,
        generator: torch.Generator | None = None,
        sampler: str = "euler",
    ) -> torch.Tensor:
        """Integrate the learned velocity from ``t = 0`` to 1 in ``steps`` network evaluations
        (Heun uses two per step except the last, so it takes ``steps // 2 + 1`` intervals)."""
        if sampler not in self.samplers:
            raise ValueError(
                f"unknown sampler {sampler!r} for {self.name}; valid: {', '.join(self.samplers)}"
            )
        noise = rng.randn(*source.shape, generator=generator, device=source.device, dtype=source.dtype)
        x = self.start(source, noise)
        intervals = steps if sampler == "euler" else max(1, (steps + 1) // 2)
        times = torch.linspace(0.0, 1.0, intervals + 1, device=source.device)
        for i, (t, s) in enumerate(zip(times[:-1], times[1:])):
            b = source.shape[0]
            v = model_fn(x, t.expand(b))
            if sampler == "heun" and i < intervals - 1:
                x_pred = x + (s - t) * v
                v = 0.5 * (v + model_fn(x_pred, s.expand(b)))
            x = x + (s - t) * v
        return x
