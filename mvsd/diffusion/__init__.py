"""Diffusion processes (what is noised and what the network predicts) and their samplers.

Processes are plain objects, not ``nn.Module``s: they hold no weights and know nothing of the
network, which they reach only through a ``model_fn(x_t, t) -> output`` closure (sgmse/diffusers).
"""

from mvsd.diffusion.flow import SourceFlow
from mvsd.diffusion.vp import VPDiffusion

PROCESSES = {"vp": VPDiffusion, "flow": SourceFlow}


def make_process(name: str, **kwargs):
    """The process called ``name`` (``vp`` or ``flow``)."""
    if name not in PROCESSES:
        raise ValueError(f"unknown diffusion process {name!r}; valid: {', '.join(PROCESSES)}")
    return PROCESSES[name](**kwargs)


__all__ = ["PROCESSES", "SourceFlow", "VPDiffusion", "make_process"]
