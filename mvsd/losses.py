"""Training objectives of one converter, shared by the trainer and the tests.

``diffusion_step`` draws times and noise, runs the network once and returns the diffusion loss
(MSE between the network's output and the process's regression target: noise for ``vp``,
velocity for ``flow``) together with the one-step target estimate, which the style and cycle
losses of mutual learning use without running a sampler.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mvsd.models.net import MVSDNet


def diffusion_step(
    net: MVSDNet,
    process,
    target: torch.Tensor,
    source: torch.Tensor,
    image: torch.Tensor,
    generator: torch.Generator | None = None,
    start_fraction: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectrograms ``target, source (B, 2, F, N)``, ``image (B, C, H, W)`` ->
    (diffusion loss (scalar), one-step estimate of the target ``(B, 2, F, N)``).

    ``start_fraction`` (flow only): the share of samples trained at ``t = 0``, the only time a
    1-step sampler evaluates; the rest draw ``t`` uniformly as usual."""
    b = target.shape[0]
    t = process.sample_times(b, target.device, generator)
    if start_fraction > 0 and process.name == "flow":
        at_start = torch.rand(b, device=target.device, generator=generator) < start_fraction
        t = torch.where(at_start, torch.zeros_like(t), t)
    noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
    x_t, want = process.training_pair(target, source, t, noise)
    out = net(x_t, source, t, image)
    return F.mse_loss(out, want), process.estimate_target(x_t, t, out, source)


def style_loss(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between compressed magnitude spectrograms (MVSD's "style" loss)."""
    return F.l1_loss(magnitude(estimate), magnitude(target))


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``(B, 2, F, N)`` (real, imag) -> ``(B, F, N)`` magnitude."""
    return torch.sqrt(spec[:, 0] ** 2 + spec[:, 1] ** 2 + 1e-12)
