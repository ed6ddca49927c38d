"""One picture path for training and inference (mvsd/images.py), and the training augmentation."""

import io

import numpy as np
import pytest
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


def test_one_file_reader_for_ingest_and_inference(tmp_path):
    """A portrait phone photo (EXIF orientation 6) and a 16-bit greyscale PNG read the same by
    ingest (adapters.read_image) and by mvsd reverb/dereverb (inference.read_image): upright, and
    not clipped to white."""
    from mvsd.data.adapters import read_image as ingest_read
    from mvsd.inference import read_image as infer_read

    a = photo(60, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    Image.fromarray(a).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    for read in (ingest_read, infer_read):
        img = read(tmp_path / "phone.jpg")
        assert img.shape == (80, 60, 3)  # upright: portrait
        assert np.abs(img.astype(float) - np.rot90(a, -1)).mean() < 3  # clockwise, as the tag says
    grey = np.linspace(0, 40000, 80 * 60).reshape(60, 80).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    for read in (ingest_read, infer_read):
        img = read(tmp_path / "g16.png")
        assert img.dtype == np.uint8 and img.shape == (60, 80, 3)
        assert img[0, 0, 0] == 0 and img[-1, -1, 0] == 255  # scaled by the maximum, not clipped
        assert abs(float(img.mean()) - 127.5) < 2


def test_a_broken_image_names_the_file(tmp_path):
    from mvsd.errors import BadInput
    from mvsd.images import load_image

    bad = tmp_path / "room.jpg"
    bad.write_bytes(jpeg(photo(40, 40))[:200])  # truncated
    with pytest.raises(BadInput, match="room.jpg"):
        load_image(bad)
