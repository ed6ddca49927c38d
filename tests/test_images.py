"""One picture path for training and inference (mvsd/images.py), and the training augmentation."""

import io

import numpy as np
import torch
from PIL import Image

from mvsd.data.loader import load_image
from mvsd.images import augment, prepare_images, resize_pixels

SIZE = (96, 128)


def photo(h, w, seed=0):
    """A smooth, photo-like RGB image (gradients + a few blobs)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([x, y, (x + y) / 2], axis=-1)
    for _ in range(5):
        cy, cx, r = rng.uniform(0, 1, 3)
        img += (
            0.3
            * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (0.02 + 0.05 * r))[..., None]
            * rng.uniform(-1, 1, 3)
        )
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def jpeg(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_training_and_inference_prepare_a_picture_alike():
    for h, w in [(96, 128), (480, 640), (1000, 700)]:
        a = photo(h, w)
        data = jpeg(a)
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        train = load_image(data, SIZE)  # the loader (JPEG draft decoding for big photos)
        infer = prepare_images(decoded, 1, SIZE, use_depth=False)[0].numpy()  # mvsd reverb/dereverb
        assert train.shape == infer.shape == (3, *SIZE)
        if (h, w) == SIZE:
            np.testing.assert_array_equal(train, infer)
        assert np.abs(train - infer).mean() < 0.02, (h, w)


def test_resize_antialiases_a_fine_pattern():
    # a 1-pixel checkerboard shrunk 4x should become mid-grey, not aliased stripes
    board = ((np.indices((384, 512)).sum(0) % 2) * 255).astype(np.uint8)
    out = resize_pixels(np.repeat(board[..., None], 3, axis=-1), SIZE)
    assert abs(out.mean() - 0.5) < 0.02 and out.std() < 0.05


def test_augment_keeps_shape_and_range_and_is_seeded():
    imgs = torch.from_numpy(np.stack([resize_pixels(photo(96, 128, s), SIZE) for s in range(4)]))
    a = augment(imgs, torch.Generator().manual_seed(1))
    b = augment(imgs, torch.Generator().manual_seed(1))
    c = augment(imgs, torch.Generator().manual_seed(2))
    assert a.shape == imgs.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a - imgs).abs().mean() > 0.01  # it does change the pictures ...
    assert (a - imgs).abs().mean() < 0.3  # ... but they stay the same rooms
