"""One mutual-learning training step for both converters (MVSD §3.3), through the physical spine.

Each converter first makes a physical estimate of its output from the whole clip and the room its
image suggests (:mod:`mvsd.models.room`), then its flow learns to refine that estimate on a crop
(``train.segment_seconds``). Loss = Σ λ_k L_k over named terms (weights: ``train.lambdas``):

* ``reverb/diffusion``, ``dereverb/diffusion`` — each converter's diffusion loss on the samples
  it learns from: R (dry -> room) on ``paired`` and ``pseudo_clean`` samples (whose dry side D
  made), D (room -> dry) on ``paired`` and ``pseudo_reverb`` samples (whose room side R made);
* ``reverb/style``, ``dereverb/style`` — L1 between the one-step refined magnitudes and the
  target's (MVSD's style loss);
* ``dereverb/sisdr`` — minus the SI-SDR (dB / 10) of D's one-step refined waveform against the
  dry crop, off by default (``train.lambdas.sisdr: 0``; BENCHMARKS.md);
* ``reverb/room``, ``dereverb/room`` — each room head against the room of a known RIR (per-band
  T60, DRR, band decay curves; :func:`mvsd.models.room.room_loss`);
* ``reverb/envelope``, ``dereverb/envelope`` — the physical estimate against the target's energy
  envelope over the whole clip: teaches the room heads wherever a pair is real, RIR known or not.
  Both room terms are only computed while the heads learn: by default
  (``train.room_lr_scale: 0``) a head pre-trained on known RIRs (:mod:`mvsd.train.room`) is frozen
  with its visual encoder, because these small-batch terms, pseudo-pairs included, made it worse
  (BENCHMARKS.md); on data without RIRs the heads learn from the envelope terms alone;
* ``cycle/clean`` (dry -> R -> D -> dry) and ``cycle/reverb`` (room -> D -> R -> room) on paired
  samples: the first converter's one-step output becomes the second's input (its physical
  estimate included), and the second's one-step output is compared (L1 magnitudes) with the
  original. Every piece is differentiable, so no sampler runs during training.

The step returns ``dict[str, Tensor]`` of the named (unweighted) terms plus ``total``.
"""

from __future__ import annotations

import math

import torch

from mvsd.audio_io import SAMPLE_RATE
from mvsd.config import TrainConfig
from mvsd.images import augment
from mvsd.losses import diffusion_loss, envelope_loss, sisdr_loss, style_loss
from mvsd.models.room import rir_from_room, room_loss, room_targets
from mvsd.train.state import TrainState, unwrap

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


def draw_crop(total: int, seconds: float, generator: torch.Generator | None) -> tuple[int, int]:
    """``(offset, length)`` of the U-Net's training crop inside clips of ``total`` samples."""
    n = min(total, round(seconds * SAMPLE_RATE))
    off = int(torch.randint(0, total - n + 1, (1,), generator=generator)) if total > n else 0
    return off, n


def compute_losses(
    state: TrainState, batch: dict, cfg: TrainConfig, gen: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """The named loss terms of one batch (module docstring) and their weighted ``total``."""
    r, d = state.converters["reverb"], state.converters["dereverb"]
    device = r.device
    wave = {k: batch[k].to(device) for k in ("clean", "reverb")}
    image = batch["image"].to(device)
    if cfg.augment:
        image = augment(image, gen)
    has_rir = batch.get("has_rir", torch.zeros(image.shape[0], dtype=torch.bool)).to(device)
    crop = draw_crop(wave["clean"].shape[-1], cfg.segment_seconds, gen)
    terms: dict[str, torch.Tensor] = {}
    outs = {}
    for name, conv, src, tgt in (("reverb", r, "clean", "reverb"), ("dereverb", d, "reverb", "clean")):
        m = kind_mask(batch, LEARNS_FROM[name], device)
        if not m.any():
            continue
        out = conv.net(conv.process, wave[src][m], wave[tgt][m], image[m], crop, gen, cfg.start_fraction, cfg.target_phase[name])
        terms[f"{name}/diffusion"] = diffusion_loss(out)
        terms[f"{name}/style"] = style_loss(out["refined"], out["target"])
        if name == "dereverb" and cfg.lambdas.get("sisdr", 0) > 0:
            off, n = crop
            terms["dereverb/sisdr"] = sisdr_loss(conv.stft.inverse(out["refined"], n), wave[tgt][m][:, off : off + n])
        known = has_rir[m]
        # a frozen room head (pre-trained, train.room_lr_scale 0) learns nothing from these terms
        learns_room = any(p.requires_grad for p in unwrap(conv.net).room.parameters())
        if cfg.lambdas.get("room", 0) > 0 and known.any() and learns_room:
            targets = room_targets(batch["rir"].to(device)[m][known])
            rir = (
                out["rir"][known]
                if out["rir"] is not None
                else _synth_for_loss(out["room"].index(known), gen)
            )
            terms[f"{name}/room"] = room_loss(out["room"].index(known), rir, targets)
        if cfg.lambdas.get("envelope", 0) > 0 and learns_room:
            terms[f"{name}/envelope"] = envelope_loss(out["estimate"], wave[tgt][m])
        outs[name] = (m, out)
    if cfg.lambdas.get("cycle", 0) > 0:
        paired = kind_mask(batch, ("paired",), device)
        off, n = crop
        for first, second, conv2, orig in (("reverb", "dereverb", d, "clean"), ("dereverb", "reverb", r, "reverb")):
            if first not in outs or not paired.any():
                continue
            m, out = outs[first]
            keep = paired[m]  # the first converter's outputs of paired samples
            if not keep.any():
                continue
            mid = conv2.stft.inverse(out["refined"][keep], n)
            target = wave[orig][m][keep][:, off : off + n]
            back = conv2.net(conv2.process, mid, target, image[m][keep], (0, n), gen, cfg.start_fraction, cfg.target_phase[second])
            terms[f"cycle/{orig}"] = style_loss(back["refined"], back["target"])
    total = sum(cfg.lambdas.get(loss_family(k), 0.0) * v for k, v in terms.items())
    terms["total"] = total if torch.is_tensor(total) else torch.zeros((), device=device)
    return terms


def _synth_for_loss(room, gen):
    """D has no RIR of its own: synthesise one from its room for the decay-curve loss."""
    return rir_from_room(room, 3 * SAMPLE_RATE, gen)


def train_step(
    state: TrainState, batch: dict, cfg: TrainConfig, gen: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Losses, backward, gradient clipping, optimizer step and EMA update for both converters.

    A non-finite loss skips the update (counted in ``state.skipped_steps``); the caller decides
    when too many skips end training.
    """
    for conv in state.converters.values():
        conv.net.train()
        net = unwrap(conv.net)
        for part in (net.visual, net.room):  # frozen parts keep their batch-norm statistics too
            if not any(p.requires_grad for p in part.parameters()):
                part.eval()
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
