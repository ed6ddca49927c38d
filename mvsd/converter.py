"""The converter: one class for both directions, inference on audio of any length, checkpoints.

    r = Converter.from_checkpoint("checkpoints/demo/round-1/reverb.safetensors")
    wet = r.convert(dry, image, steps=6, seed=0)   # (T,) or (B, T) float at 16 kHz

A checkpoint is one safetensors file: the weights (``net.*``), their EMA (``ema.*``) and a JSON
header with the :class:`ConverterSpec` and the versions that wrote it — self-describing, and
loading it can never execute code.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mvsd import __version__
from mvsd.audio import Spectrogram, StftConfig
from mvsd.checkpoint_header import check_header, check_spec
from mvsd.config import ModelConfig, SizeConfig
from mvsd.diffusion import make_process
from mvsd.errors import BadInput, MvsdError
from mvsd.images import prepare_images
from mvsd.models.net import ConverterSpec, MVSDNet
from mvsd.models.room import Room
from mvsd.segments import crossfade_join, split_segments

FORMAT = "mvsd-converter/2"  # 2: room head + physical first estimate, 6-channel U-Net


class CheckpointError(MvsdError):
    """A checkpoint is missing, unreadable, or does not fit."""


def make_process_for(spec: ConverterSpec):
    return make_process(spec.process, **({"sigma": spec.flow_sigma} if spec.process == "flow" else {}))


class Converter:
    """A reverberator or dereverberator: network, EMA weights, diffusion process, spectrogram."""

    def __init__(
        self,
        spec: ConverterSpec,
        net: MVSDNet,
        ema: MVSDNet | None = None,
        device: str | torch.device = "cpu",
    ):
        self.spec = spec
        self.net = net
        self.ema = ema
        self.process = make_process_for(spec)
        self.stft = Spectrogram(spec.stft)
        self.device = torch.device(device)

    @classmethod
    def new(cls, direction: str, model: ModelConfig, seed: int = 0, device: str = "cpu") -> Converter:
        """A freshly initialised converter (weights depend only on ``seed``)."""
        spec = ConverterSpec.from_model_config(direction, model)
        torch.manual_seed(seed)
        net = MVSDNet(spec)
        if model.pretrained_visual:
            net.visual.load_pretrained(model.pretrained_visual)
        ema = MVSDNet(spec)
        ema.load_state_dict(net.state_dict())
        return cls(spec, net.to(device), ema.to(device), device)

    # -- checkpoints ------------------------------------------------------------------------------

    def save(self, path: str | Path, extra: dict[str, Any] | None = None, inference_only: bool = False) -> None:
        """Write weights, EMA weights and the spec to one safetensors file (atomically).
        ``inference_only``: only the weights inference uses (the EMA's, stored as ``net.*``): half
        the size, converts exactly as this converter does, cannot resume training."""
        from safetensors.torch import save_file

        from mvsd.data.shards import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        net = self.inference_net if inference_only else self.net
        tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        if self.ema is not None and not inference_only:
            tensors.update(
                {f"ema.{k}": v.detach().cpu().contiguous() for k, v in self.ema.state_dict().items()}
            )
        header = {
            "format": FORMAT,
            "spec": _to_plain(self.spec),
            "versions": {"mvsd": __version__, "torch": torch.__version__},
            "extra": extra or {},
        }
        tmp = atomic_path(path)
        save_file(tensors, str(tmp), metadata={"mvsd": json.dumps(header, sort_keys=True)})
        tmp.replace(path)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "cpu", expect_direction: str | None = None
    ) -> Converter:
        """Load a converter from its file alone. Raises :class:`CheckpointError` naming the file."""
        header, tensors = read_checkpoint(path)
        spec = spec_from_plain(header["spec"], path)
        if expect_direction and spec.direction != expect_direction:
            raise CheckpointError(
                f"{path}: a {spec.direction} converter, but a {expect_direction} one is needed"
            )
        net, ema = MVSDNet(spec), None
        _load_into(net, tensors, "net.", path)
        if any(k.startswith("ema.") for k in tensors):
            ema = MVSDNet(spec)
            _load_into(ema, tensors, "ema.", path)
        return cls(spec, net.to(device), ema.to(device) if ema else None, device)

    # -- inference --------------------------------------------------------------------------------

    @property
    def inference_net(self) -> MVSDNet:
        """The EMA weights when present (they sample better), else the raw weights."""
        return self.ema if self.ema is not None else self.net

    @torch.inference_mode()
    def convert(
        self,
        audio: np.ndarray | torch.Tensor,
        image: Any,
        steps: int | None = None,
        seed: int = 0,
        sampler: str | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        """Convert ``audio`` (``(T,)`` or ``(B, T)`` at 16 kHz) as seen in ``image``.

        ``steps``: network evaluations of the flow; 0 returns the physical first estimate alone
        (convolution with the RIR the picture suggests, or late-reverberation suppression).
        ``image``: one image for the whole batch or one per item — an array ``(H, W)``,
        ``(H, W, 3|4)`` uint8 (grayscale and RGBA are converted), a float tensor
        ``(B, 3|4, H, W)`` in [0, 1], or a path. Any length works: audio shorter than one segment
        is zero-padded, longer audio is cut into overlapping segments that are cross-faded. The
        output has the input's RMS level (clipped to [-1, 1]). Deterministic for a given ``seed``.
        ``progress``, if given, is called with the fraction done (0 to 1) as segments finish.
        """
        k = self.spec.steps if steps is None else steps
        return self.convert_steps(audio, image, [k], seed, sampler, progress=progress)[k]

    @torch.inference_mode()
    def convert_steps(
        self,
        audio: np.ndarray | torch.Tensor,
        image: Any,
        steps: Sequence[int],
        seed: int = 0,
        sampler: str | None = None,
        seconds: dict[int, float] | None = None,
        progress: Callable[[float], None] | None = None,
        room_fn: Callable[[Room], Room] | None = None,
    ) -> dict[int, np.ndarray]:
        """:meth:`convert` at several step counts (quality vs time), ``{steps: output}``: the image
        is encoded and the physical first estimate made once; each output equals what
        ``convert(audio, image, k, seed, sampler)`` returns. ``seconds``, if given, receives what
        each output would have cost on its own (the shared part plus its refinement).
        ``room_fn``, for analysis: the room the head reads is replaced by ``room_fn(room)`` before
        the physical estimate (e.g. the true room, ``benchmarks/oracle_room.py``)."""
        t0 = time.perf_counter()
        x, single = _as_batch(audio)
        images = prepare_images(image, x.shape[0], self.spec.image_size, self.spec.use_depth).to(self.device)
        rms = x.pow(2).mean(dim=1, keepdim=True).sqrt()
        target = 10 ** (self.spec.rms_db / 20)
        gain = torch.where(rms > 0, target / rms.clamp(min=1e-12), torch.ones_like(rms))
        x = x.to(self.device) * gain.to(self.device)
        net = self.inference_net.eval()
        gen = torch.Generator().manual_seed(seed)  # on the CPU (mvsd.rng): a seed gives the same noise on any device
        embedding, tokens = net.encode_image(images)
        room = net.room(embedding)
        estimate = net.first_estimate(x, room_fn(room) if room_fn else room, gen)
        after_estimate = gen.get_state()
        shared = time.perf_counter() - t0
        out = {}
        ks = list(dict.fromkeys(steps))
        for i, k in enumerate(ks):
            t1 = time.perf_counter()
            gen.set_state(after_estimate)  # every step count refines from the same state
            done = (lambda f, i=i: progress((i + f) / len(ks))) if progress else None
            y = estimate if k == 0 else self._refine(net, x, estimate, embedding, tokens, k, gen, sampler, done)
            if progress and k == 0:  # a refinement reports its own segments
                progress((i + 1) / len(ks))
            y = y.cpu()
            # The models work at the datasets' level (spec.rms_db); give the user back the input's.
            y_rms = y.pow(2).mean(dim=1, keepdim=True).sqrt()
            y = torch.where(y_rms > 0, y * rms / y_rms.clamp(min=1e-12), y).clamp(-1.0, 1.0)
            y = y.numpy().astype(np.float32)
            out[k] = y[0] if single else y
            if seconds is not None:
                seconds[k] = shared + time.perf_counter() - t1
        return out

    @torch.inference_mode()
    def describe_room(self, image: Any, batch: int = 1) -> Room:
        """The room the converter sees in ``image`` (per-band T60, DRR, ...)."""
        images = prepare_images(image, batch, self.spec.image_size, self.spec.use_depth).to(self.device)
        net = self.inference_net.eval()
        return net.room(net.encode_image(images)[0])

    def _refine(
        self,
        net: MVSDNet,
        x: torch.Tensor,
        estimate: torch.Tensor,
        embedding: torch.Tensor,
        tokens: torch.Tensor,
        steps: int,
        gen: torch.Generator,
        sampler: str | None,
        progress: Callable[[float], None] | None = None,
    ) -> torch.Tensor:
        """The flow refines the physical first estimate of the whole input segment by segment
        (``progress`` gets the fraction of segments done after each batch of them)."""
        seg = round(self.spec.segment_seconds * self.spec.sample_rate)
        hop = seg - round(self.spec.overlap_seconds * self.spec.sample_rate)
        est_segs, owners, starts = split_segments(estimate, seg, hop)
        given_segs, _, _ = split_segments(x, seg, hop)
        outs = []
        for i in range(0, est_segs.shape[0], self.spec.max_batch):
            part = slice(i, i + self.spec.max_batch)
            own = owners[part].to(self.device)
            source, given = self.stft(est_segs[part]), self.stft(given_segs[part])
            cond = (embedding[own], tokens[own])
            model_fn = lambda z, t: net.denoise(z, source, t, cond, given)  # noqa: E731, B023 (used at once)
            spec = self.process.sample(model_fn, source, steps, gen, sampler or self.spec.sampler)
            outs.append(self.stft.inverse(spec, est_segs.shape[-1]))
            if progress:
                progress(min(i + self.spec.max_batch, est_segs.shape[0]) / est_segs.shape[0])
        return crossfade_join(torch.cat(outs), owners, starts, x.shape, seg - hop)


# -- helpers --------------------------------------------------------------------------------------


def _as_batch(audio: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not torch.is_tensor(audio) else audio).float()
    single = x.ndim == 1
    if single:
        x = x[None]
    if x.ndim != 2:
        raise BadInput("<audio>", f"audio must be (T,) or (B, T); got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise BadInput("<audio>", "zero-length audio")
    if not torch.isfinite(x).all():
        raise BadInput("<audio>", "audio contains NaN or Inf samples")
    return x, single


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_plain(v) for v in obj]
    return obj


def spec_from_plain(d: dict, path: str | Path = "<checkpoint>") -> ConverterSpec:
    try:
        check_spec(d)  # before anything is built from it: a crafted spec can ask for terabytes
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    try:
        d = dict(d)
        w = d.pop("widths")
        stft = d.pop("stft")
        return ConverterSpec(
            widths=SizeConfig(
                tuple(w["unet_channels"]),
                tuple(w["visual_widths"]),
                w["embed_dim"],
                w["cond_dim"],
                w["attn_heads"],
            ),
            stft=StftConfig(**stft),
            image_size=tuple(d.pop("image_size")),
            **d,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: converter spec is incompatible with this mvsd ({e})") from None


def read_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(header, tensors) of a converter checkpoint, or CheckpointError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if "mvsd" not in meta:
        raise CheckpointError(f"{path}: not an mvsd converter checkpoint (no mvsd header)")
    try:
        header = check_header(meta["mvsd"], FORMAT)  # types, required keys, sane sizes
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return header, tensors


def _load_into(net: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: str | Path) -> None:
    state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the converter spec ({first})") from None
