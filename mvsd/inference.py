"""File-level inference behind ``mvsd reverb`` / ``mvsd dereverb``: one file or a whole folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import soundfile as sf

from mvsd.audio_io import AUDIO_EXTENSIONS, SAMPLE_RATE, load_audio
from mvsd.converter import Converter
from mvsd.errors import BadInput
from mvsd.images import load_image
from mvsd.progress import progress_bar

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _image_for(speech: Path, image: Path, images_by_stem: dict[str, Path] | None) -> Path:
    if images_by_stem is None:
        return image
    if speech.stem not in images_by_stem:
        raise BadInput(str(speech), f"no image named {speech.stem}.* in {image}")
    return images_by_stem[speech.stem]


def convert_files(
    direction: str,
    checkpoint: Path,
    image: Path,
    speech: Path,
    out: Path,
    steps: int | None = None,
    device: str = "cpu",
    seed: int = 0,
) -> Iterator[str]:
    """Convert ``speech`` (a file, or every audio file under a folder) and write wavs to ``out``.

    ``image`` is one image for everything or a folder matched by file stem. A bad file is
    reported and skipped; the others are converted. Yields one line per file and a summary.
    """
    if not image.exists():
        raise FileNotFoundError(f"{image}: no such image or folder")
    if not speech.exists():
        raise FileNotFoundError(f"{speech}: no such speech file or folder")
    conv = Converter.from_checkpoint(checkpoint, device=device, expect_direction=direction)
    images_by_stem = {p.stem: p for p in _files(image, IMAGE_EXTENSIONS)} if image.is_dir() else None
    if speech.is_dir():
        jobs = [
            (p, out / p.relative_to(speech).with_suffix(".wav")) for p in _files(speech, AUDIO_EXTENSIONS)
        ]
        if not jobs:
            raise BadInput(str(speech), "no audio files (wav/flac/ogg/mp3) in this folder")
    else:
        jobs = [(speech, out)]
    failed = 0
    with progress_bar(f"{direction}", len(jobs)) as advance:
        for src, dst in jobs:
            try:
                audio = load_audio(src)
                img = load_image(_image_for(src, image, images_by_stem))
                y = conv.convert(audio, img, steps=steps, seed=seed)
            except BadInput as e:
                failed += 1
                yield f"skipped {e}"
                advance(1)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            sf.write(dst, y, SAMPLE_RATE, subtype="PCM_16")
            advance(1)
            yield f"{src} -> {dst}"
    yield f"{len(jobs) - failed} converted, {failed} skipped"
