"""Turning whatever image a user has into the visual encoder's input tensor — one path for
training (the loader) and inference (:func:`prepare_images`): :func:`resize_pixels` — and the
training-time augmentation (:func:`augment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from mvsd import rng
from mvsd.errors import BadInput


def load_image(source: str | Path | BinaryIO, name: str | None = None) -> np.ndarray:
    """An image file (a path, or an open binary file named ``name``) as ``(H, W, 3)`` uint8 RGB —
    the one reader of image files, for ingest and for ``mvsd reverb``/``dereverb`` alike: the
    camera's EXIF orientation applied (a portrait phone photo stays upright); grayscale, palette,
    CMYK and RGBA converted; 16/32-bit integer and float images (Pillow modes ``I;16``, ``I``,
    ``F``: greyscale with a wide range, which Pillow's own RGB conversion clips at 255 and so
    turns almost white) scaled by their maximum. Anything else is :class:`BadInput` naming it."""
    name = name or str(source)
    try:
        with Image.open(source) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1"):
                return np.asarray(im.convert("RGB"))
            x = np.asarray(im, dtype=np.float64)  # I, I;16, F: gray with a wide range
    except Exception as e:  # PIL raises UnidentifiedImageError, OSError, SyntaxError, bombs...
        raise BadInput(name, f"unreadable image ({type(e).__name__}: {e})") from None
    return rgb_from_array(x / max(float(np.nanmax(x)), 1e-12), name)


def rgb_from_array(x: Any, name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 from an ``(H, W)``, ``(H, W, 1|3|4)`` array (uint8, or float in [0, 1]
    or [0, 255]); alpha is dropped, gray is repeated."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = np.stack([x] * 3, axis=-1)
    if x.ndim != 3 or x.shape[2] not in (3, 4) or x.dtype.kind not in "fiub" or x.size == 0:
        raise BadInput(name, f"image must be an (H, W[, 1|3|4]) number array, not {x.shape} {x.dtype}")
    x = x[..., :3]
    if x.dtype != np.uint8:
        x = x.astype(np.float64)
        if not np.isfinite(x).all():
            raise BadInput(name, "image contains NaN or Inf")
        x = np.clip(np.round(x * 255 if x.max() <= 1.0 else x), 0, 255)
    return np.ascontiguousarray(x, dtype=np.uint8)


def resize_pixels(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(3, h, w)`` float32 in [0, 1] at ``size = (h, w)``: Pillow's
    bilinear filter, which antialiases when shrinking. The loader and inference both use it."""
    h, w = size
    if pixels.shape[:2] != (h, w):
        pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR))
    chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)
    chw *= np.float32(1 / 255)
    return chw


def augment(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Light, acoustics-preserving augmentation of ``(B, C, H, W)`` images in [0, 1]: a random crop
    of 80-100 % of each side resized back, a horizontal flip, and brightness, contrast and
    saturation jitter of ±20 % — so a room head learns rooms, not a renderer's exact pixels."""
    b, c, h, w = images.shape
    dev = images.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * rng.rand(b, *shape, generator=generator, device=dev)

    scale, ox, oy = u(0.8, 1.0), u(0.0, 1.0), u(0.0, 1.0)
    flip = torch.where(rng.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = (1 - scale) * (2 * ox - 1)
    theta[:, 1, 2] = (1 - scale) * (2 * oy - 1)
    grid = F.affine_grid(theta, (b, c, h, w), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    rgb = out[:, :3]
    grey = rgb.mean(1, keepdim=True)
    rgb = grey + (rgb - grey) * u(0.8, 1.2, 1, 1, 1)  # saturation
    mean = rgb.mean((1, 2, 3), keepdim=True)
    rgb = mean + (rgb - mean) * u(0.8, 1.2, 1, 1, 1)  # contrast
    rgb = rgb * u(0.8, 1.2, 1, 1, 1)  # brightness
    return torch.cat([rgb.clamp(0, 1), out[:, 3:]], dim=1)


def _to_chw(img: Any, size: tuple[int, int]) -> torch.Tensor:
    """One image as float ``(C, H, W)`` in [0, 1], C = 3 (RGB) or 4 (RGB + depth)."""
    if isinstance(img, (str, Path)):
        img = load_image(img)
    if torch.is_tensor(img):
        t = img.float()
        if t.ndim != 3 or t.shape[0] not in (3, 4):
            raise BadInput("<image>", f"a tensor image must be (3|4, H, W); got {tuple(t.shape)}")
        return t
    a = np.asarray(img)
    if a.ndim == 2:  # grayscale
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise BadInput("<image>", f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got {a.shape}")
    if a.shape[-1] == 4:  # RGBA: drop alpha (composited on black would darken the room)
        a = a[..., :3]
    if a.dtype == np.uint8:
        return torch.from_numpy(resize_pixels(np.ascontiguousarray(a), size))
    return torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)


def prepare_images(image: Any, batch: int, size: tuple[int, int], use_depth: bool) -> torch.Tensor:
    """``(batch, 3|4, H, W)`` float: one image (broadcast) or a sequence/tensor of ``batch``.

    Images are resized to ``size`` as the training loader does (:func:`resize_pixels`; float
    inputs: bilinear with antialiasing). With ``use_depth`` an RGB image gets a zero depth
    channel; depth maps (metres) are expected already scaled to [0, 1] by the caller.
    """
    if torch.is_tensor(image) and image.ndim == 4 or isinstance(image, (list, tuple)):
        items = list(image)
    else:
        items = [image]
    if len(items) not in (1, batch):
        raise BadInput("<image>", f"{len(items)} images for a batch of {batch}")
    chw = [_to_chw(i, size) for i in items]
    out = torch.stack(
        [
            c
            if tuple(c.shape[-2:]) == tuple(size)
            else F.interpolate(c[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
            for c in chw
        ]
    )
    if use_depth and out.shape[1] == 3:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=1)
    if not use_depth:
        out = out[:, :3]
    return out.expand(batch, -1, -1, -1) if out.shape[0] == 1 else out
