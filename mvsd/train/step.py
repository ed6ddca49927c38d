"""One mutual-learning training step for both converters (MVSD §3.3).

Loss = Σ λ_k L_k over named terms (weights: ``train.lambdas`` in params.yaml):

* ``reverb/diffusion``, ``dereverb/diffusion`` — each converter's diffusion loss on the samples
  it learns from: R (dry -> room) on ``paired`` and ``pseudo_clean`` samples (whose dry side D
  made), D (room -> dry) on ``paired`` and ``pseudo_reverb`` samples (whose room side R made);
* ``reverb/style``, ``dereverb/style`` — L1 between the one-step estimate's magnitudes and the
  target's (MVSD's style loss);
* ``cycle/clean`` (dry -> R -> D -> dry) and ``cycle/reverb`` (room -> D -> R -> room) on paired
  samples: the first converter's one-step estimate becomes the second's source, and the second's
  one-step estimate is compared (L1 magnitudes) with the original. Every piece is differentiable,
  so no sampler runs during training.

The step returns ``dict[str, Tensor]`` of the named (unweighted) terms plus ``total``.
"""

from __future__ import annotations

import math

import torch

from mvsd.config import TrainConfig
from mvsd.losses import diffusion_step, style_loss
from mvsd.train.state import TrainState

# Which sample kinds each converter learns from (DESIGN.md: pseudo_reverb trains D, pseudo_clean R).
LEARNS_FROM = {"reverb": ("paired", "pseudo_clean"), "dereverb": ("paired", "pseudo_reverb")}


def kind_mask(batch: dict, kinds: tuple[str, ...], device: torch.device) -> torch.Tensor:
    ok = [m.get("kind") in kinds for m in batch["meta"]]
    return (
        torch.tensor(ok, dtype=torch.bool, device=device)
        & batch["has_clean"].to(device)
        & batch["has_reverb"].to(device)
    )


def loss_family(name: str) -> str:
    """The ``train.lambdas`` key weighting a term: ``reverb/style`` -> style, ``cycle/clean`` -> cycle."""
    group, kind = name.split("/")
    return "cycle" if group == "cycle" else kind


def compute_losses(
    state: TrainState, batch: dict, cfg: TrainConfig, gen: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The named loss terms of one batch (module docstring) and their weighted ``total``."""
    r, d = state.converters["reverb"], state.converters["dereverb"]
    device = r.device
    stft = r.stft
    clean, reverb, image = (batch[k].to(device) for k in ("clean", "reverb", "image"))
    spec = {"clean": stft(clean), "reverb": stft(reverb)}
    terms: dict[str, torch.Tensor] = {}
    estimates = {}
    for name, conv, src, tgt in (("reverb", r, "clean", "reverb"), ("dereverb", d, "reverb", "clean")):
        m = kind_mask(batch, LEARNS_FROM[name], device)
        if not m.any():
            continue
        loss, est = diffusion_step(
            conv.net, conv.process, spec[tgt][m], spec[src][m], image[m], gen, cfg.start_fraction
        )
        terms[f"{name}/diffusion"] = loss
        terms[f"{name}/style"] = style_loss(est, spec[tgt][m])
        estimates[name] = (m, est)
    if cfg.lambdas.get("cycle", 0) > 0:
        paired = kind_mask(batch, ("paired",), device)
        for first, conv2, orig in (("reverb", d, "clean"), ("dereverb", r, "reverb")):
            if first not in estimates or not paired.any():
                continue
            m, est = estimates[first]
            keep = paired[m]  # the first converter's estimates of paired samples
            if not keep.any():
                continue
            target = spec[orig][m][keep]
            _, back = diffusion_step(
                conv2.net, conv2.process, target, est[keep], image[m][keep], gen, cfg.start_fraction
            )
            terms[f"cycle/{orig}"] = style_loss(back, target)
    total = sum(cfg.lambdas.get(loss_family(k), 0.0) * v for k, v in terms.items())
    terms["total"] = total if torch.is_tensor(total) else torch.zeros((), device=device)
    return terms


def train_step(
    state: TrainState, batch: dict, cfg: TrainConfig, gen: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Losses, backward, gradient clipping, optimizer step and EMA update for both converters.

    A non-finite loss skips the update (counted in ``state.skipped_steps``); the caller decides
    when too many skips end training.
    """
    for conv in state.converters.values():
        conv.net.train()
    terms = compute_losses(state, batch, cfg, gen)
    total = terms["total"]
    for opt in state.optimizers.values():
        opt.zero_grad(set_to_none=True)
    if not math.isfinite(float(total.detach())):
        state.skipped_steps += 1
        return {k: v.detach() for k, v in terms.items()}
    if total.requires_grad:
        total.backward()
        for name, conv in state.converters.items():
            torch.nn.utils.clip_grad_norm_(conv.net.parameters(), cfg.grad_clip)
            state.optimizers[name].step()
    state.update_ema(cfg.ema_decay)
    state.step += 1
    return {k: v.detach() for k, v in terms.items()}
