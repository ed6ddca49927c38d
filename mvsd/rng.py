"""Random draws from a seeded generator, on whatever device the model is on.

Training keeps one seeded CPU generator whose state is checkpointed and restored with the weights
(a resumed round continues the same stream); inference seeds a CPU generator too
(``Converter.convert_steps``). ``rand``/``randn`` draw on the generator's device and move the result
to ``device``, so a model on a GPU gets the very random stream it would get on the CPU, and on the
CPU nothing moves.
"""

from __future__ import annotations

import torch


def _where(generator: torch.Generator | None, device) -> torch.device | None:
    return generator.device if generator is not None else device


def rand(*shape: int, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """``torch.rand(shape)`` from ``generator``, on ``device``."""
    return torch.rand(*shape, generator=generator, device=_where(generator, device), dtype=dtype).to(device)


def randn(*shape: int, generator: torch.Generator | None = None, device=None, dtype=None) -> torch.Tensor:
    """``torch.randn(shape)`` from ``generator``, on ``device``."""
    return torch.randn(*shape, generator=generator, device=_where(generator, device), dtype=dtype).to(device)
