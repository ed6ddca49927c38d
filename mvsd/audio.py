"""The converters' audio representation: a complex STFT with amplitude compression.

Following score-based speech enhancement (sgmse, Welker et al. 2022, Eq. 1), a complex STFT
coefficient ``z = |z| e^{iφ}`` is represented as ``c(z) = β |z|^α e^{iφ}``: the magnitude is
compressed (α = 0.5) so that quiet time-frequency bins matter, the phase is kept, and the map is
exactly invertible, so no vocoder is needed. The network sees ``(real, imag)`` as two channels.

Shapes: audio ``(B, T)`` samples at 16 kHz; spectrogram ``(B, 2, F, N)`` with ``F = n_fft/2 + 1``
frequency bins and ``N = T / hop + 1`` frames (``center=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StftConfig:
    n_fft: int = 510  # 256 frequency bins: a power of two, so the U-Net can halve it cleanly
    hop: int = 128  # 8 ms at 16 kHz; 2.56 s -> 321 frames
    alpha: float = 0.5  # magnitude compression exponent
    beta: float = 0.33  # scale, brings compressed values to about unit variance

    @property
    def freq_bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        return samples // self.hop + 1


class Spectrogram:
    """Forward and inverse compressed STFT (stateless apart from the cached window)."""

    def __init__(self, cfg: StftConfig = StftConfig()):
        self.cfg = cfg
        self._windows: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def _window(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.device, x.dtype)
        if key not in self._windows:
            self._windows[key] = torch.hann_window(
                self.cfg.n_fft, periodic=True, device=x.device, dtype=x.dtype
            )
        return self._windows[key]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` float audio -> ``(B, 2, F, N)`` compressed (real, imag)."""
        c = self.cfg
        z = torch.stft(audio, c.n_fft, c.hop, window=self._window(audio), center=True, return_complex=True)
        return _rescale(torch.stack([z.real, z.imag], dim=1), c.alpha, c.beta)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``(B, 2, F, N)`` -> ``(B, length)`` audio; the inverse of :meth:`forward`."""
        c = self.cfg
        z = _rescale(spec.float(), 1.0 / c.alpha, c.beta ** (-1.0 / c.alpha))
        z = torch.complex(z[:, 0], z[:, 1])
        return torch.istft(z, c.n_fft, c.hop, window=self._window(z.real), center=True, length=length)

    __call__ = forward


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``(B, 2, F, N)`` (real, imag) -> ``(B, F, N)`` magnitude."""
    return torch.sqrt(spec[:, 0] ** 2 + spec[:, 1] ** 2 + 1e-12)


# |z|^2 floor of the rescaling: far below any audible bin (a 2.56 s clip at -25 dBFS has bins of
# |z|^2 ~ 1e-3..1e2), but it keeps the gradient finite where a bin is exactly zero (|z| and its
# angle have no derivative there, and training once produced NaN weights from it).
EPS = 1e-12


def _rescale(ri: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """``(B, 2, ...)`` (real, imag) of ``z`` -> of ``beta |z|^alpha e^{i angle z}``, as
    ``z * beta * |z|^(alpha - 1)``: no angle, differentiable at ``z = 0``."""
    power = ri[:, 0] ** 2 + ri[:, 1] ** 2 + EPS
    return ri * (beta * power.pow((alpha - 1.0) / 2.0)).unsqueeze(1)
