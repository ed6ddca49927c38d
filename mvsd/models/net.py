"""One converter's network: the visual encoder, the room head and the U-Net denoiser, built from a spec.

embedding, tokens = net.encode_image(image)
room = net.room(embedding)                                   # per-band T60, DRR, ...
estimate = net.first_estimate(audio, room, generator)       # physical: convolve / suppress
output = process.sample(lambda x, t: net.denoise(x, stft(estimate), t, cond, stft(audio)), ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mvsd import rng
from mvsd.audio import Spectrogram, StftConfig, magnitude
from mvsd.config import ModelConfig, SizeConfig
from mvsd.models.room import Room, RoomHead, dereverb_estimate, reverb_estimate
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
    rir_seconds: float = 3.0  # longest synthesised RIR (R's first estimate)
    tail_levels: str = "learned"  # learned | flat (0 dB band levels and early gain); "learned" for checkpoints older than the field
    # D's first estimate advanced by this many samples (model.estimate_advance; DIRECT_INDEX would
    # undo the lag of R's RIRs, mvsd.models.room.dereverb_estimate); 0 for checkpoints older than the field
    estimate_advance: int = 0
    # Conventions the weights rely on, stored so that inference never repeats them in code:
    sample_rate: int = 16000
    rms_db: float = -25.0  # level of the audio the converter was trained on

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
            rir_seconds=m.rir_seconds,
            tail_levels=m.tail_levels,
            estimate_advance=m.estimate_advance if direction == "dereverb" else 0,
        )


class MVSDNet(nn.Module):
    """Inference: ``encode_image`` and ``room`` once, ``first_estimate``, then ``denoise`` per step.
    Training: ``forward`` (one pass over a batch, see there)."""

    def __init__(self, spec: ConverterSpec):
        super().__init__()
        w = spec.widths
        self.visual = VisualEncoder(
            VisualConfig(w.visual_widths, w.embed_dim, 4 if spec.use_depth else 3, spec.image_size)
        )
        self.room = RoomHead(w.embed_dim, learned_levels=spec.tail_levels == "learned")
        self.unet = UNet(
            UNetConfig(w.unet_channels, w.cond_dim, w.attn_heads), w.embed_dim, self.visual.token_dim
        )
        self.direction = spec.direction
        self.stft = spec.stft
        self.spectrogram = Spectrogram(spec.stft)
        self.rir_seconds = spec.rir_seconds
        self.estimate_advance = spec.estimate_advance

    def encode_image(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 3 or 4, H, W)`` -> ``(embedding (B, E), tokens (B, M, D))``."""
        return self.visual(image)

    def first_estimate(
        self, audio: torch.Tensor, room: Room, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``(B, T)`` -> ``(B, T)``: the physical estimate of the output for the whole input —
        convolution with the room's RIR (reverb) or late-reverberation suppression (dereverb)."""
        if self.direction == "reverb":
            return reverb_estimate(audio, room, self.rir_seconds, generator)[0]
        return dereverb_estimate(audio, room, self.stft, self.estimate_advance)

    def denoise(
        self,
        x: torch.Tensor,
        source: torch.Tensor,
        t: torch.Tensor,
        cond: tuple[torch.Tensor, torch.Tensor],
        given: torch.Tensor,
    ) -> torch.Tensor:
        return self.unet(x, source, t, *cond, given)

    def forward(
        self,
        process,
        given: torch.Tensor,
        target: torch.Tensor,
        image: torch.Tensor,
        crop: tuple[int, int],
        generator: torch.Generator | None = None,
        start_fraction: float = 0.0,
        target_phase: str = "own",
    ) -> dict:
        """One training pass (through ``forward``, so DistributedDataParallel sees it).

        ``given``, ``target``: ``(B, T)`` whole clips (input and wanted output); the physical
        estimate is made from the whole ``given`` (tails longer than the crop), then
        ``crop = (offset, length)`` of estimate, input and target go through the process: times
        ``t`` (``start_fraction`` of them at 0, the 1-step sampler's only time) and noise are drawn,
        the U-Net predicts the process's regression target. ``target_phase``: ``own`` (the
        target's spectrogram as it is) or ``source`` (the target's magnitudes with the physical
        estimate's phase, :func:`with_phase_of`: only magnitudes are regressed). Returns ``room``, ``rir`` (reverb
        only), ``estimate`` ``(B, T)``, ``source``/``target`` spectrograms of the crop, the U-Net
        ``output``, what it should have been (``want``) and the one-step ``refined`` spectrogram.
        """
        embedding, tokens = self.encode_image(image)
        room = self.room(embedding)
        rir = None
        if self.direction == "reverb":
            estimate, rir = reverb_estimate(given, room, self.rir_seconds, generator)
        else:
            estimate = dereverb_estimate(given, room, self.stft, self.estimate_advance)
        off, n = crop
        spec = self.spectrogram
        source = spec(
            estimate[:, off : off + n]
        ).detach()  # the flow refines; the room is taught by its own losses
        given_spec, target_spec = spec(given[:, off : off + n]), spec(target[:, off : off + n])
        if target_phase == "source":
            target_spec = with_phase_of(target_spec, source)
        b = given.shape[0]
        t = process.sample_times(b, given.device, generator)
        if start_fraction > 0 and process.name == "flow":
            at_start = rng.rand(b, device=given.device, generator=generator) < start_fraction
            t = torch.where(at_start, torch.zeros_like(t), t)
        noise = rng.randn(*target_spec.shape, generator=generator, device=given.device, dtype=target_spec.dtype)
        x_t, want = process.training_pair(target_spec, source, t, noise)
        output = self.unet(x_t, source, t, embedding, tokens, given_spec)
        return {
            "room": room,
            "rir": rir,
            "estimate": estimate,
            "source": source,
            "target": target_spec,
            "output": output,
            "want": want,
            "refined": process.estimate_target(x_t, t, output, source),
        }


def with_phase_of(magnitude_from: torch.Tensor, phase_from: torch.Tensor) -> torch.Tensor:
    """``(B, 2, F, N)`` (real, imag) spectrograms -> the magnitudes of ``magnitude_from`` with the
    phases of ``phase_from`` (0 where ``phase_from`` is 0). Works on compressed spectrograms too:
    compression changes magnitudes, not phases."""
    return magnitude(magnitude_from).unsqueeze(1) * (phase_from / magnitude(phase_from).unsqueeze(1))
