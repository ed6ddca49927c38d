"""File-level inference behind ``mvsd reverb`` / ``mvsd dereverb``: one file or a whole folder.

Every argument is checked before any work (:func:`plan_conversion`, :func:`check_device`,
:func:`check_steps`), so a bad ``--out`` or ``--device`` costs nothing. The user's files are never
overwritten by accident: an output that resolves to an input (speech, image or checkpoint) is
refused even with ``overwrite``, and an existing output is replaced only with ``overwrite``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from mvsd.audio_io import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio
from mvsd.errors import BadInput
from mvsd.progress import progress_bar

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC"}  # what one output file may be called
MAX_STEPS = 1000


@dataclass(frozen=True)
class ConversionPlan:
    """What a conversion reads and writes, checked: ``jobs`` are (speech file, output file)."""

    jobs: list[tuple[Path, Path]]
    image: Path
    images_by_stem: dict[str, Path] | None  # None: one image for every file


@dataclass(frozen=True)
class ConversionSummary:
    converted: int
    failed: int

    def line(self) -> str:
        return f"{self.converted} converted, {self.failed} skipped"


def _files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _real(p: Path) -> str:
    return os.path.realpath(p)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies under it (after resolving links)."""
    a, b = _real(path), _real(folder)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)


def plan_conversion(
    image: Path, speech: Path, out: Path, checkpoint: Path | None = None, overwrite: bool = False
) -> ConversionPlan:
    """Check the paths of a conversion and list its jobs, or raise ValueError/FileNotFoundError.

    Refused: a missing image or speech input; ``out`` a folder when ``speech`` is a file (or a
    file when it is a folder), without a ``.wav``/``.flac`` name, or the speech folder itself or
    inside it; two inputs written to the same output; an output that is an input; an existing
    output unless ``overwrite``.
    """
    if not image.exists():
        raise FileNotFoundError(f"{image}: no such image or folder")
    if not speech.exists():
        raise FileNotFoundError(f"{speech}: no such speech file or folder")
    if speech.is_dir():
        if out.exists() and not out.is_dir():
            raise ValueError(
                f"--out {out}: a file, but --speech {speech} is a folder; --out must be a folder"
            )
        if _inside(out, speech):
            raise ValueError(
                f"--out {out} is the --speech folder or inside it: outputs would mix with the inputs; "
                "choose another folder"
            )
        sources = _files(speech, AUDIO_EXTENSIONS)
        if not sources:
            raise BadInput(str(speech), "no audio files (wav/flac/ogg/mp3) in this folder")
        jobs = [(p, out / p.relative_to(speech).with_suffix(".wav")) for p in sources]
    else:
        if out.is_dir():
            raise ValueError(
                f"--out {out} is a folder; with one --speech file, --out is the output file "
                f"(e.g. {out / (speech.stem + '.wav')})"
            )
        if out.suffix.lower() not in OUTPUT_FORMATS:
            raise ValueError(f"--out {out}: the output file must end in {' or '.join(OUTPUT_FORMATS)}")
        jobs = [(speech, out)]
    images_by_stem = {p.stem: p for p in _files(image, IMAGE_EXTENSIONS)} if image.is_dir() else None
    inputs = [p for p, _ in jobs] + (list(images_by_stem.values()) if images_by_stem else [image])
    inputs += [checkpoint] if checkpoint is not None else []
    input_by_real = {_real(p): p for p in inputs}
    by_output: dict[str, Path] = {}
    existing = []
    for src, dst in jobs:
        real = _real(dst)
        if real in input_by_real:
            raise ValueError(
                f"--out {out}: would overwrite the input {input_by_real[real]}; choose another output"
            )
        if real in by_output:
            raise ValueError(f"{by_output[real]} and {src} would both be written to {dst}; rename one")
        by_output[real] = src
        if dst.exists():
            existing.append(dst)
    if existing and not overwrite:
        raise ValueError(
            f"{len(existing)} output file(s) exist already (first: {existing[0]}); "
            "pass --overwrite to replace them"
        )
    return ConversionPlan(jobs, image, images_by_stem)


def check_device(device: str) -> str:
    """``device`` if torch can run on it here, else ValueError listing what is valid."""
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {device!r} is not a device; valid: cpu, cuda, cuda:N, mps") from None
    if d.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
        if d.index is not None and d.index >= n:
            raise ValueError(f"--device {device}: this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}")
    elif d.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: Apple's MPS is not available here; use --device cpu")
    elif d.type != "cpu":
        raise ValueError(f"--device {device!r}: only cpu, cuda, cuda:N and mps are supported")
    return device


def check_steps(steps: int | None) -> int | None:
    if steps is not None and not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"--steps {steps}: must be between 0 and {MAX_STEPS} (or left out)")
    return steps


def read_image(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 (:func:`mvsd.images.load_image`, as ingest reads it),
    or BadInput for anything Pillow refuses (corrupt, truncated, or over its decompression-bomb
    limit)."""
    from mvsd.images import load_image

    return load_image(path)


def _image_for(speech: Path, plan: ConversionPlan) -> Path:
    if plan.images_by_stem is None:
        return plan.image
    if speech.stem not in plan.images_by_stem:
        raise BadInput(str(speech), f"no image named {speech.stem}.* in {plan.image}")
    return plan.images_by_stem[speech.stem]


def write_audio_atomic(path: Path, y: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    """16-bit wav/flac (by ``path``'s suffix) written to a temporary sibling and renamed, so an
    interrupted run leaves either the old file or the whole new one."""
    from mvsd.data.shards import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    try:
        sf.write(tmp, y, rate, subtype="PCM_16", format=OUTPUT_FORMATS[path.suffix.lower()])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def at_input_rate(y: np.ndarray, src: Path) -> tuple[np.ndarray, int]:
    """``y`` (16 kHz) resampled to ``src``'s sample rate and cut or padded to its length: the
    output lines up with the input file sample for sample (nothing above 8 kHz is restored)."""
    from mvsd.audio_io import resample

    info = sf.info(str(src))
    z = resample(y, SAMPLE_RATE, int(info.samplerate))
    z = np.pad(z, (0, max(0, info.frames - len(z))))[: info.frames]
    return np.clip(z, -1.0, 1.0).astype(np.float32), int(info.samplerate)


def _seconds(path: Path) -> float:
    """Duration of an audio file from its header (0 if unreadable: it is reported when loaded)."""
    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001  (any unreadable file: load_audio names the problem later)
        return 0.0


def convert_files(
    direction: str,
    checkpoint: Path,
    image: Path,
    speech: Path,
    out: Path,
    steps: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    overwrite: bool = False,
    report: Callable[[str], None] = print,
    keep_rate: bool = False,
) -> ConversionSummary:
    """Convert ``speech`` (a file, or every audio file under a folder) and write wavs to ``out``.

    ``image`` is one image for everything or a folder matched by file stem. Arguments are checked
    first (see :func:`plan_conversion`); then a bad file is reported and skipped and the others
    are converted. ``report`` gets one line per file and a summary line. Outputs are 16 kHz mono,
    or with ``keep_rate`` at each input's own sample rate (:func:`at_input_rate`).
    """
    from mvsd.converter import Converter

    plan = plan_conversion(image, speech, out, checkpoint, overwrite)
    check_steps(steps)
    check_device(device)
    one_image = read_image(image) if plan.images_by_stem is None else None  # a bad image: no work
    conv = Converter.from_checkpoint(checkpoint, device=device, expect_direction=direction)
    failed = 0
    seconds = {src: _seconds(src) for src, _ in plan.jobs}  # the bar counts audio, not files
    with progress_bar(f"{direction} (seconds of audio)", max(1, round(sum(seconds.values())))) as advance:
        for src, dst in plan.jobs:
            moved = [0.0]

            def move_to(fraction: float, length: float = seconds[src], moved: list = moved) -> None:
                advance(fraction * length - moved[0])
                moved[0] = fraction * length

            try:
                audio = load_audio(src)
                img = one_image if one_image is not None else read_image(_image_for(src, plan))
                y = conv.convert(audio, img, steps=steps, seed=seed, progress=move_to)
            except BadInput as e:
                failed += 1
                report(f"skipped {e}")
                move_to(1.0)
                continue
            write_audio_atomic(dst, *(at_input_rate(y, src) if keep_rate else (y,)))
            move_to(1.0)
            report(f"{src} -> {dst}")
    summary = ConversionSummary(len(plan.jobs) - failed, failed)
    report(summary.line())
    return summary
