"""Turning whatever image a user has into the visual encoder's input tensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from mvsd.errors import BadInput


def load_image(path: str | Path) -> np.ndarray:
    """Any image file Pillow reads -> ``(H, W, 3)`` uint8 (grayscale, palette and RGBA converted)."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as e:
        raise BadInput(str(path), f"unreadable image ({type(e).__name__}: {e})") from None


def _to_chw(img: Any) -> torch.Tensor:
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
    t = torch.from_numpy(np.array(a)).permute(2, 0, 1).float()  # a writable copy
    return t / 255.0 if a.dtype == np.uint8 else t


def prepare_images(image: Any, batch: int, size: tuple[int, int], use_depth: bool) -> torch.Tensor:
    """``(batch, 3|4, H, W)`` float: one image (broadcast) or a sequence/tensor of ``batch``.

    Images are resized to ``size`` (bilinear). With ``use_depth`` an RGB image gets a zero depth
    channel; depth maps (metres) are expected already scaled to [0, 1] by the caller.
    """
    if torch.is_tensor(image) and image.ndim == 4 or isinstance(image, (list, tuple)):
        items = list(image)
    else:
        items = [image]
    if len(items) not in (1, batch):
        raise BadInput("<image>", f"{len(items)} images for a batch of {batch}")
    chw = [_to_chw(i) for i in items]
    out = torch.stack(
        [F.interpolate(c[None], size=size, mode="bilinear", align_corners=False)[0] for c in chw]
    )
    if use_depth and out.shape[1] == 3:
        out = torch.cat([out, torch.zeros_like(out[:, :1])], dim=1)
    if not use_depth:
        out = out[:, :3]
    return out.expand(batch, -1, -1, -1) if out.shape[0] == 1 else out
