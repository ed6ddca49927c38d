"""Typed, frozen configuration built from ``params.yaml``.

``params.yaml`` is the single source of every knob: each top-level section maps to one frozen
dataclass below. Unknown keys, missing sections and values of the wrong type are errors that name
the offending key and list the valid ones, never silently ignored.

    params = load_params("params.yaml", overrides=["simrooms.train_samples=200"])
    params.simrooms.clip_seconds  # 2.56
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mvsd.errors import ConfigError


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16_000
    rms_db: float = -25.0  # every clip is brought to this RMS level (dBFS) ...
    peak_db: float = -1.0  # ... unless that would push its peak past this (dBFS)


@dataclass(frozen=True)
class ImageConfig:
    width: int = 128
    height: int = 96
    fov_deg: float = 110.0  # wide: floor and ceiling both in view in most rooms
    tilt_deg: float = 8.0  # camera pitched up from the talker: high ceilings come into view
    panorama: bool = False  # equirectangular 360° view instead of a perspective view
    pano_width: int = 256
    pano_height: int = 128
    material_looks: bool = False  # draw which material of its class each surface is (not only the class)


@dataclass(frozen=True)
class RirConfig:
    ism_order: int = 3  # image-source order for the early part ...
    ray_tracing: bool = True  # ... and ray tracing for the late tail (hybrid)
    n_rays: int = 2000
    receiver_radius: float = 0.5
    max_seconds: float = 2.0  # RIRs are cut here (and faded out over the last 10 ms)
    # Drop the propagation delay: the direct sound lands 2.5 ms in, so reverberant and dry speech
    # are time-aligned (a dereverberator need not learn to shift time; sample metrics line up).
    align_direct: bool = True
    air_absorption: bool = True


@dataclass(frozen=True)
class RoomRanges:
    """How rooms and (mic, source) placements are drawn. Ranges are [lo, hi], metres.

    The dimension ranges clamp each room type's own; free-form rooms use them whole.
    """

    length: tuple[float, float] = (3.0, 24.0)
    width: tuple[float, float] = (2.5, 18.0)
    height: tuple[float, float] = (2.4, 9.0)
    min_wall_distance: float = 0.5  # source and mic keep this far from every surface
    min_source_distance: float = 1.0  # between source and mic
    # Share of rooms of no type: each dimension log-uniform in the ranges above, each surface any
    # class its group (walls, floor, ceiling) takes in any type; size and materials vary apart.
    freeform_share: float = 0.35
    material_swap: float = 0.15  # typed rooms: chance per surface of a class from the other types
    seated_share: float = 0.4  # talkers seated (mouth at seated_height), the rest standing
    seated_height: tuple[float, float] = (1.1, 1.3)
    standing_height: tuple[float, float] = (1.5, 1.8)
    mic_height: tuple[float, float] = (0.8, 2.2)  # table, ear, wall-mounted camera
    near_share: float = 0.35  # placements with the source within near_distance of the mic ...
    near_distance: float = 2.0  # ... the rest beyond it, where the room allows

    def __post_init__(self) -> None:
        for name in ("freeform_share", "material_swap", "seated_share", "near_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1]; got {getattr(self, name)}")
        for name in ("seated_height", "standing_height", "mic_height"):  # dimensions: validate()
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < lo <= hi; got {(lo, hi)}")
        if self.near_distance < self.min_source_distance:
            raise ValueError(
                f"near_distance ({self.near_distance}) must be >= min_source_distance ({self.min_source_distance})"
            )


@dataclass(frozen=True)
class SimRoomsConfig:
    seed: int = 1234
    clip_seconds: float = 2.56
    n_rooms_seen: int = 150  # rooms in train/val/test_seen
    n_rooms_unseen: int = 30  # rooms only in test_unseen
    views_per_room: int = 2  # (source, mic) placements per room, each its own RIR and image
    n_speakers: int = 48
    train_samples: int = 1600
    val_samples: int = 150
    test_seen_samples: int = 150
    test_unseen_samples: int = 150
    # How the train split divides between paired samples and the two unpaired pools.
    pool_ratios: dict[str, float] = field(
        default_factory=lambda: {"paired": 0.66, "clean_only": 0.17, "reverb_only": 0.17}
    )
    workers: int = 0  # processes, or Ray tasks at once (shards.executor); 0 = all cores
    room: RoomRanges = field(default_factory=RoomRanges)
    rir: RirConfig = field(default_factory=RirConfig)
    image: ImageConfig = field(default_factory=ImageConfig)


@dataclass(frozen=True)
class ShardsConfig:
    samples_per_shard: int = 100
    row_group_size: int = 4096  # manifest rows per Parquet row group
    compression: str = "zstd"
    executor: str = "local"  # where shard tasks run: local (processes here) | ray (RAY_ADDRESS or a local Ray)


@dataclass(frozen=True)
class IngestConfig:
    # Fractions of an adapter's inputs that go to val/test when the source has no split of its own.
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    workers: int = 0  # processes, or Ray tasks at once (shards.executor); 0 = all cores


@dataclass(frozen=True)
class LoaderConfig:
    """What :func:`mvsd.data.loader.make_loader` needs; the pipeline builds it with
    :func:`loader_config` (clip length and picture size from the model, batch size from train)."""

    segment_seconds: float = 2.56
    batch_size: int = 8
    shuffle_buffer: int = 256
    num_workers: int = 1
    image_size: tuple[int, int] = (96, 128)  # (H, W) images are resized to


@dataclass(frozen=True)
class LoaderParams:
    """The ``loader`` section: only what is the loader's own to decide."""

    shuffle_buffer: int = 256
    num_workers: int = 1


PSEUDO_SETS = ("all", "latest")  # train.pseudo_sets
LR_SCHEDULES = ("constant", "cosine")  # train.lr_schedule
LOSS_FAMILIES = ("diffusion", "style", "cycle", "room", "envelope", "sisdr")  # train.lambdas keys (mvsd.train.step)
TAIL_LEVELS = ("flat", "learned")  # flat: 0 dB band levels and early gain; learned: from the room head


@dataclass(frozen=True)
class SizeConfig:
    """Widths of one model size (both converters use the same size)."""

    unet_channels: tuple[int, ...] = (
        8,
        16,
        32,
        64,
    )  # a light first level: full-resolution convs dominate CPU time
    visual_widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    embed_dim: int = 256
    cond_dim: int = 128
    attn_heads: int = 2


def _default_sizes() -> dict[str, SizeConfig]:
    return {
        "tiny": SizeConfig((4, 8), (4, 8, 8, 8), 32, 32, 1),
        "small": SizeConfig(),
        "base": SizeConfig((32, 64, 128, 256), (64, 128, 256, 512), 256, 256, 4),
    }


@dataclass(frozen=True)
class ModelConfig:
    size: str = "small"  # tiny (tests) | small (CPU default) | base (GPU)
    process: str = "flow"  # vp (MVSD's noise prediction) | flow (from the source to the target)
    flow_sigma: float = 0.05  # noise added to the source at the start of the flow
    sampler: str = "euler"  # vp: ddim | ddpm; flow: euler | heun
    steps: int = 1  # network evaluations per conversion (BENCHMARKS.md: 1 is best at CPU budgets)
    segment_seconds: float = 2.56  # converters work on segments this long ...
    overlap_seconds: float = 0.32  # ... overlapping by this much, cross-faded
    max_batch: int = 16  # segments per forward pass at inference
    image_size: tuple[int, int] = (96, 128)  # (H, W) images are resized to
    use_depth: bool = False  # a 4th (depth) input channel; off: user images and the loader are RGB
    pretrained_visual: str | None = None  # local ResNet-18 state dict to start the encoder from
    rir_seconds: float = 3.0  # longest RIR the reverberator synthesises (its first estimate)
    tail_levels: str = "flat"  # the synthesised tail's level per band and early gain: TAIL_LEVELS
    # the dereverberator's first estimate advanced by this many samples (40 = DIRECT_INDEX undoes the
    # 2.5 ms lag of R's RIRs; better on val at 300 steps, worse at the quality recipe's 800: BENCHMARKS.md)
    estimate_advance: int = 0
    sizes: dict[str, SizeConfig] = field(default_factory=_default_sizes)

    def widths_multiple_frames(self) -> int:
        """The fewest samples a training crop may have: one STFT frame per U-Net level (hop 128)."""
        return 128 * 2 ** (len(self.sizes[self.size].unet_channels) - 1)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    lr: float = 2e-3
    # constant | cosine: each round's rate falls from lr to 0 along half a cosine over its steps
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    # Loss weights by family: each converter's diffusion and style losses, and the cycle losses.
    lambdas: dict[str, float] = field(
        default_factory=lambda: {"diffusion": 1.0, "style": 1.0, "cycle": 0.5, "room": 1.0, "envelope": 1.0, "sisdr": 0.0}
    )
    steps: int = 600  # optimizer steps per round (a resumed run ends at the same count)
    batch_size: int = 4  # samples per worker per step
    segment_seconds: float = 1.28  # U-Net training crops, cut from whole clips after the physical estimate
    room_steps: int = 600  # round 0: steps teaching the image -> room head alone, before the main loop
    room_batch: int = 32  # images per room step
    room_lr_scale: float = 0.0  # visual encoder + room head in the main loop: lr x this (0: frozen after pre-training)
    augment: bool = True  # colour, crop and flip augmentation of training images
    start_fraction: float = 0.5  # flow: share of each batch trained at t = 0 (what 1-step sampling uses)
    # per converter, the spectrogram its flow regresses: own (the target's) | source (the target's
    # magnitudes with the physical estimate's phase: magnitudes only, as a mask would)
    target_phase: dict[str, str] = field(default_factory=lambda: {"reverb": "own", "dereverb": "own"})
    pseudo_fraction: float = 0.17  # share of each batch from accepted pseudo-pairs (rounds >= 1)
    # round k's own pseudo-pair sets: all (rounds 0..k-1) | latest (round k-1's only: the same pools
    # converted and scored again by the better converters, the older sets left out)
    pseudo_sets: str = "latest"  # latest: chosen on val (BENCHMARKS.md, "The data-efficiency curve")
    checkpoint_every: int = 100
    max_nan_steps: int = 20  # non-finite losses in a row before training stops with an error
    workers: int = 0  # Ray Train workers (DDP); 0 = in this process (Ray Train's local mode)
    threads_per_worker: int = 0  # torch threads per worker; 0 = cores / workers
    use_gpu: bool = False
    bf16: bool = True  # autocast on GPU
    max_failures: int = 2  # worker failures Ray Train retries (from the last checkpoint)
    storage_path: str = "checkpoints/ray"  # Ray Train storage: a folder or a URL (s3://...)
    object_store_mb: int = 256  # object store of a locally started Ray


@dataclass(frozen=True)
class PseudoConfig:
    steps: int = 1  # sampling steps of each conversion
    keep_fraction: float = 0.5  # of each kind, the best-scoring (lowest cycle distance) are kept ...
    max_distance: float | None = None  # ... and only those under this cycle STFT distance
    # score: the best of all candidates (their cycles favour dry rooms); rooms: the best within each
    # of accept_bins bands of the reverberation R's head reads from the picture (the room mix kept)
    accept: str = "score"
    accept_bins: int = 4
    chunk: int = 32  # candidates per output shard (one actor task)
    workers: int = 1  # Ray Data actors, each holding both converters
    threads: int = 2  # torch threads (and Ray CPUs) per actor
    seed: int = 0
    max_items: int = 0  # cap per kind (0 = all): small demos


@dataclass(frozen=True)
class EvaluateConfig:
    """The pipeline's evaluation stage (``dvc.yaml``: ``mvsd eval`` with these as its options)."""

    split: str = "test_unseen"
    limit: int = 0  # samples scored; 0 = the whole split
    report_samples: int = 4  # samples shown with players and spectrograms on the report page


@dataclass(frozen=True)
class OrchestrationConfig:
    """The Prefect flows (``flows/``): what the scheduled inbox flow watches and continues."""

    inbox: str = "inbox"  # folder or fsspec URL: clean/ (dry speech), reverb/ (image + audio by stem)
    dataset: str = "datasets/simrooms"  # paired data that every round trains on
    run: str = "demo"  # the run whose rounds the inbox continues
    checkpoints: str = "checkpoints"
    cron: str = "0 * * * *"  # `python -m flows.serve`: when the inbox flow runs
    eval_split: str = "test_unseen"
    eval_limit: int = 0  # samples scored after each inbox round; 0 = the whole split
    dvc: bool = True  # version new datasets and rounds with DVC (and push) when in a DVC repo
    lock_timeout_s: float = 3600.0  # waiting for the repository lock longer than this fails the run


@dataclass(frozen=True)
class Params:
    audio: AudioConfig = field(default_factory=AudioConfig)
    simrooms: SimRoomsConfig = field(default_factory=SimRoomsConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    loader: LoaderParams = field(default_factory=LoaderParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    orchestration: OrchestrationConfig = field(default_factory=OrchestrationConfig)

    def replace(self, **sections: Any) -> Params:
        return dataclasses.replace(self, **sections)


# -- building dataclasses from plain data, strictly -----------------------------------------------


def build(cls: type, data: Any, where: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, checking every key and type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'params'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{where or 'params'}: unknown key(s) {unknown}; valid keys: {', '.join(names)}")
    values = {k: _coerce(hints[k], v, f"{where}.{k}".lstrip(".")) for k, v in data.items()}
    try:
        obj = cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'params'}: {e}") from None
    return obj


def _coerce(tp: Any, v: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, v, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if v is None and type(None) in args:
            return None
        return _coerce(next(a for a in args if a is not type(None)), v, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]: any length >= 1
            if not isinstance(v, (list, tuple)) or not v:
                raise ConfigError(f"{where}: expected a non-empty list, got {v!r}")
            args = (args[0],) * len(v)
        if not isinstance(v, (list, tuple)) or len(v) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {v!r}")
        return tuple(_coerce(a, x, f"{where}[{i}]") for i, (a, x) in enumerate(zip(args, v)))
    if origin is dict:
        kt, vt = typing.get_args(tp)
        if not isinstance(v, dict):
            raise ConfigError(f"{where}: expected a mapping, got {v!r}")
        return {_coerce(kt, k, where): _coerce(vt, x, f"{where}.{k}") for k, x in v.items()}
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: expected true or false, got {v!r}")
        return v
    if tp is float and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if tp in (int, str) and isinstance(v, tp) and not isinstance(v, bool):
        return v
    raise ConfigError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {v!r}")


def to_dict(obj: Any) -> Any:
    """Plain-data form of a config (tuples become lists), e.g. to store in a checkpoint."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to nested plain data."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        keys = dotted.strip().split(".")
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {k} is not a section")
        try:
            node[keys[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as e:
            why = _yaml_problem(e)
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({why})") from None
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (line and column, 1-based)."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def default_params_path() -> Path:
    """``$MVSD_PARAMS``, else ``params.yaml`` in the working directory."""
    return Path(os.environ.get("MVSD_PARAMS", "params.yaml"))


def loader_config(params: Params, batch_size: int, segment_seconds: float | None = None) -> LoaderConfig:
    """The loader the pipeline trains with: clips of ``segment_seconds`` (default
    ``model.segment_seconds``: whole clips, the physical estimate needs the tail), pictures at
    ``model.image_size`` (what the converters are built for), ``batch_size`` samples."""
    return LoaderConfig(
        segment_seconds=params.model.segment_seconds if segment_seconds is None else segment_seconds,
        batch_size=batch_size,
        shuffle_buffer=params.loader.shuffle_buffer,
        num_workers=params.loader.num_workers,
        image_size=tuple(params.model.image_size),
    )


def load_params(path: str | Path | None = None, overrides: list[str] | None = None) -> Params:
    """Read and validate ``params.yaml``; sections absent from the file take their defaults.

    Args:
        path: the params file; None means :func:`default_params_path` (defaults if it is absent).
        overrides: ``section.key=value`` strings applied on top (``mvsd ... --set``).
    """
    explicit = path is not None
    path = Path(path) if explicit else default_params_path()
    data: dict = {}
    if path.exists():
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    elif explicit:
        raise ConfigError(f"{path}: no such params file")
    data = apply_overrides(data, list(overrides or []))
    try:
        return validate(build(Params, data))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


# The valid range of every count, size, rate, level and fraction: dotted key -> (low, high, bounds)
# with None for no limit and bounds "[]", "[)", "(]" or "()" (closed or open ends). A key ending
# in ".*" applies to every entry of a mapping, a list or a tuple (model.sizes.*.unet_channels.*).
RANGES: dict[str, tuple[float | None, float | None, str]] = {
    "audio.rms_db": (-80, 0, "[)"),  # a positive RMS level clips most samples
    "audio.peak_db": (-80, 0, "[]"),
    "simrooms.clip_seconds": (0, 60, "(]"),
    "simrooms.n_rooms_seen": (1, None, "[)"),
    "simrooms.n_rooms_unseen": (1, None, "[)"),
    "simrooms.views_per_room": (1, None, "[)"),
    "simrooms.n_speakers": (1, None, "[)"),
    "simrooms.train_samples": (1, None, "[)"),
    "simrooms.val_samples": (0, None, "[)"),
    "simrooms.test_seen_samples": (0, None, "[)"),
    "simrooms.test_unseen_samples": (0, None, "[)"),
    "simrooms.pool_ratios.*": (0, 1, "[]"),
    "simrooms.workers": (0, 4096, "[]"),
    "simrooms.room.length.*": (0, 1000, "(]"),
    "simrooms.room.width.*": (0, 1000, "(]"),
    "simrooms.room.height.*": (0, 1000, "(]"),
    "simrooms.room.min_wall_distance": (0, None, "[)"),
    "simrooms.room.min_source_distance": (0, None, "()"),
    "simrooms.room.near_distance": (0, None, "()"),
    "simrooms.rir.ism_order": (0, 100, "[]"),
    "simrooms.rir.n_rays": (1, None, "[)"),
    "simrooms.rir.receiver_radius": (0, None, "()"),
    "simrooms.rir.max_seconds": (0, 30, "(]"),
    "simrooms.image.width": (8, 8192, "[]"),
    "simrooms.image.height": (8, 8192, "[]"),
    "simrooms.image.fov_deg": (0, 180, "()"),
    "simrooms.image.tilt_deg": (-90, 90, "[]"),
    "simrooms.image.pano_width": (8, 8192, "[]"),
    "simrooms.image.pano_height": (8, 8192, "[]"),
    "shards.samples_per_shard": (1, None, "[)"),
    "shards.row_group_size": (1, None, "[)"),
    "ingest.val_fraction": (0, 1, "[]"),
    "ingest.test_fraction": (0, 1, "[]"),
    "ingest.workers": (0, 4096, "[]"),
    "loader.shuffle_buffer": (0, None, "[)"),
    "loader.num_workers": (0, 1024, "[]"),
    "model.flow_sigma": (0, None, "[)"),
    "model.steps": (1, 1000, "[]"),
    "model.segment_seconds": (0, 60, "(]"),
    "model.max_batch": (1, None, "[)"),
    "model.rir_seconds": (0, 30, "(]"),
    "model.estimate_advance": (0, 16000, "[]"),
    "model.image_size.*": (8, 4096, "[]"),
    "model.sizes.*.unet_channels.*": (1, 4096, "[]"),
    "model.sizes.*.visual_widths.*": (1, 4096, "[]"),
    "model.sizes.*.embed_dim": (1, 4096, "[]"),
    "model.sizes.*.cond_dim": (1, 4096, "[]"),
    "model.sizes.*.attn_heads": (1, 64, "[]"),
    "train.lr": (0, None, "()"),
    "train.weight_decay": (0, None, "[)"),
    "train.ema_decay": (0, 1, "[]"),
    "train.grad_clip": (0, None, "()"),
    "train.lambdas.*": (0, None, "[)"),
    "train.steps": (1, None, "[)"),
    "train.batch_size": (1, None, "[)"),
    "train.segment_seconds": (0, 60, "(]"),
    "train.checkpoint_every": (1, None, "[)"),
    "train.room_steps": (0, None, "[)"),
    "train.room_batch": (1, None, "[)"),
    "train.room_lr_scale": (0, 1, "[]"),
    "train.max_nan_steps": (1, None, "[)"),
    "train.workers": (0, 4096, "[]"),
    "train.threads_per_worker": (0, 4096, "[]"),
    "train.max_failures": (-1, None, "[)"),  # -1: retry for ever (Ray's convention)
    "train.object_store_mb": (75, None, "[)"),  # Ray's minimum object store
    "pseudo.steps": (0, 1000, "[]"),
    "pseudo.max_distance": (0, None, "[)"),
    "pseudo.chunk": (1, None, "[)"),
    "pseudo.workers": (1, 4096, "[]"),
    "pseudo.threads": (1, 4096, "[]"),
    "pseudo.max_items": (0, None, "[)"),
    "evaluate.limit": (0, None, "[)"),
    "evaluate.report_samples": (0, None, "[)"),
    "orchestration.eval_limit": (0, None, "[)"),
    "orchestration.lock_timeout_s": (0, None, "[)"),
}
# Knobs that take one of a few names: dotted key -> the valid names.
CHOICES: dict[str, tuple[str, ...]] = {
    "shards.compression": ("none", "snappy", "gzip", "brotli", "lz4", "zstd"),  # Parquet's codecs
    "shards.executor": ("local", "ray"),
    "evaluate.split": ("val", "test_seen", "test_unseen"),
    "orchestration.eval_split": ("val", "test_seen", "test_unseen"),
    "train.target_phase.*": ("own", "source"),
}


def _values(node: Any, keys: list[str], where: str) -> list[tuple[str, Any]]:
    """(dotted key, value) pairs that ``keys`` (with ``*`` wildcards) name under ``node``."""
    if not keys:
        return [(where, node)]
    k, rest = keys[0], keys[1:]
    if k != "*":
        return _values(getattr(node, k) if dataclasses.is_dataclass(node) else node[k], rest, f"{where}.{k}")
    items = node.items() if isinstance(node, dict) else enumerate(node)
    return [pair for i, v in items for pair in _values(v, rest, f"{where}.{i}")]


def _interval(lo: float | None, hi: float | None, bounds: str) -> str:
    if hi is None:
        return f"{'>=' if bounds[0] == '[' else '>'} {lo}"
    return f"{bounds[0]}{lo}, {hi}{bounds[1]}"


def check_ranges(params: Params) -> None:
    """Every value of :data:`RANGES` within its range, every value of :data:`CHOICES` one of its
    names; ConfigError naming the key, the value and what is valid."""
    for dotted, (lo, hi, bounds) in RANGES.items():
        section, *keys = dotted.split(".")
        for key, v in _values(getattr(params, section), keys, section):
            if v is None:  # optional knobs (pseudo.max_distance) are off
                continue
            ok = (lo is None or (v >= lo if bounds[0] == "[" else v > lo)) and (
                hi is None or (v <= hi if bounds[1] == "]" else v < hi)
            )  # NaN compares false, so it is out of every range
            if not ok:
                raise ConfigError(f"{key} = {v!r} is out of range; valid: {_interval(lo, hi, bounds)}")
    for dotted, names in CHOICES.items():
        section, *keys = dotted.split(".")
        for key, v in _values(getattr(params, section), keys, section):
            if v not in names:
                raise ConfigError(f"{key} = {v!r} is not one of: {', '.join(names)}")


def validate(params: Params) -> Params:
    """Ranges and choices of single values, then cross-field checks that types cannot express."""
    check_ranges(params)
    if params.ingest.val_fraction + params.ingest.test_fraction > 1:
        raise ConfigError(
            f"ingest.val_fraction + ingest.test_fraction = "
            f"{params.ingest.val_fraction + params.ingest.test_fraction} must be <= 1"
        )
    if params.audio.rms_db > params.audio.peak_db:
        raise ConfigError(
            f"audio.rms_db ({params.audio.rms_db}) must be <= audio.peak_db ({params.audio.peak_db})"
        )
    s = params.simrooms
    ratios = s.pool_ratios
    if set(ratios) != {"paired", "clean_only", "reverb_only"}:
        raise ConfigError(
            f"simrooms.pool_ratios must have exactly paired, clean_only, reverb_only; got {sorted(ratios)}"
        )
    if any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise ConfigError(f"simrooms.pool_ratios must be >= 0 and sum to 1; got {ratios}")
    for name in ("length", "width", "height"):
        lo, hi = getattr(s.room, name)
        if not 0 < lo <= hi:
            raise ConfigError(f"simrooms.room.{name} must satisfy 0 < lo <= hi; got {(lo, hi)}")
    if s.room.height[0] <= 2 * s.room.min_wall_distance:
        raise ConfigError("simrooms.room.height is too small for simrooms.room.min_wall_distance")
    m = params.model
    if m.size not in m.sizes:
        raise ConfigError(f"model.size {m.size!r} is not one of the sizes: {', '.join(m.sizes)}")
    valid_samplers = {"vp": ("ddim", "ddpm"), "flow": ("euler", "heun")}
    if m.process not in valid_samplers:
        raise ConfigError(f"model.process {m.process!r} is not one of: vp, flow")
    if m.sampler not in valid_samplers[m.process]:
        raise ConfigError(
            f"model.sampler {m.sampler!r} does not fit model.process {m.process!r}; valid: {', '.join(valid_samplers[m.process])}"
        )
    if not 0 <= m.overlap_seconds < m.segment_seconds / 2:
        raise ConfigError("model.overlap_seconds must be >= 0 and less than half of model.segment_seconds")
    for name, size in m.sizes.items():
        if any(c % size.attn_heads for c in size.unet_channels[-1:]):
            raise ConfigError(f"model.sizes.{name}: the last unet channel count must divide by attn_heads")
    if m.steps < 1:
        raise ConfigError(f"model.steps must be >= 1; got {m.steps}")
    if m.tail_levels not in TAIL_LEVELS:
        raise ConfigError(f"model.tail_levels {m.tail_levels!r} is not one of: {', '.join(TAIL_LEVELS)}")
    t, ps = params.train, params.pseudo
    if not 0 <= t.start_fraction <= 1:
        raise ConfigError(f"train.start_fraction must be in [0, 1]; got {t.start_fraction}")
    if set(t.target_phase) != {"reverb", "dereverb"}:
        raise ConfigError(f"train.target_phase needs exactly the keys reverb and dereverb; got {sorted(t.target_phase)}")
    if t.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}; got {t.lr_schedule!r}")
    if t.pseudo_sets not in PSEUDO_SETS:
        raise ConfigError(f"train.pseudo_sets must be one of {', '.join(PSEUDO_SETS)}; got {t.pseudo_sets!r}")
    if not 0 <= t.pseudo_fraction < 1:
        raise ConfigError(f"train.pseudo_fraction must be in [0, 1); got {t.pseudo_fraction}")
    if t.pseudo_fraction > 0 and t.batch_size < 2:
        raise ConfigError(
            "train.batch_size must be >= 2 when train.pseudo_fraction > 0 (each batch holds paired and pseudo samples)"
        )
    if t.steps < 1 or t.checkpoint_every < 1 or t.workers < 0:
        raise ConfigError("train.steps and train.checkpoint_every must be >= 1 and train.workers >= 0")
    if t.segment_seconds * 16_000 < params.model.widths_multiple_frames():
        raise ConfigError("train.segment_seconds is too short for the model")
    unknown = set(t.lambdas) - set(LOSS_FAMILIES)
    if unknown:
        raise ConfigError(
            f"train.lambdas: unknown loss families {sorted(unknown)}; valid: {', '.join(LOSS_FAMILIES)}"
        )
    if not 0 < ps.keep_fraction <= 1:
        raise ConfigError(f"pseudo.keep_fraction must be in (0, 1]; got {ps.keep_fraction}")
    if ps.accept not in ("score", "rooms") or ps.accept_bins < 1:
        raise ConfigError(
            f"pseudo.accept must be score or rooms and pseudo.accept_bins >= 1; got {ps.accept!r}, {ps.accept_bins}"
        )
    if params.audio.sample_rate != 16_000:
        raise ConfigError("audio.sample_rate: only 16000 is supported")
    return params
