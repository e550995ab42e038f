"""OpenCV preprocessing against MindSpore's eval pipeline (Decode + create_transforms(False)) on real files."""

import cv2
import numpy as np
import pytest

from tests.convert.graphs import make_card
from toolkit.data import create_transforms
from toolkit.errors import DataError
from toolkit.preprocess import load_batch, load_image, preprocess

# Both sides decode with libjpeg, resize with OpenCV's fixed-point bilinear and crop at the same
# offsets, so the uint8 crops are identical; only float32 normalisation order can differ (< 1 ULP).
ATOL = 1e-5

# (height, width, channels, extension): landscape, portrait, square, very wide, upscaled, odd sizes,
# a grayscale JPEG and an RGBA PNG.
IMAGES = [(480, 640, 3, ".jpg"), (640, 480, 3, ".jpg"), (300, 300, 3, ".jpg"), (257, 1000, 3, ".jpg"),
          (123, 77, 3, ".jpg"), (100, 101, 3, ".jpg"), (375, 500, 1, ".jpg"), (333, 444, 4, ".png")]


def _write_image(path, height, width, channels, seed):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) * 7 % 256], axis=-1).astype(np.float32)
    image = np.clip(image + rng.randn(height, width, 3) * 20, 0, 255).astype(np.uint8)
    if channels == 1:
        image = image[..., 0]
    elif channels == 4:
        image = np.concatenate([image, rng.randint(0, 256, (height, width, 1), dtype=np.uint8)], axis=-1)
    ok, encoded = cv2.imencode(path.suffix, image)
    assert ok
    encoded.tofile(path)
    return path


def _mindspore_eval(path, card):
    import mindspore.dataset as ds
    import mindspore.dataset.vision as vision

    dataset = ds.NumpySlicesDataset({"image": [np.fromfile(path, np.uint8)]}, shuffle=False)
    transforms = [vision.Decode()] + create_transforms(False, card.image_size, card.mean, card.std,
                                                       card.crop_pct, card.interpolation)
    dataset = dataset.map(transforms, input_columns="image")
    return next(dataset.create_tuple_iterator(output_numpy=True))[0]


@pytest.mark.parametrize("image_size, crop_pct", [(224, 0.875), (128, 0.875), (96, 1.0), (64, 1.15)])
def test_opencv_preprocessing_matches_mindspore_eval_transform(tmp_path, image_size, crop_pct):
    card = make_card(image_size, crop_pct=crop_pct)
    for i, (h, w, c, ext) in enumerate(IMAGES):
        path = _write_image(tmp_path / f"{h}x{w}x{c}{ext}", h, w, c, seed=i)
        ours = preprocess(load_image(path), card)
        assert ours.shape == (3, image_size, image_size) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, _mindspore_eval(path, card), atol=ATOL, rtol=0, err_msg=path.name)


def test_exif_orientation_is_ignored_like_mindspore(tmp_path):
    """MindSpore decodes the stored pixels; an EXIF "rotate 90" tag must not turn the image."""
    from PIL import Image

    pixels = np.random.RandomState(0).randint(0, 256, (120, 200, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif.tobytes())
    assert load_image(path).shape == (120, 200, 3)
    card = make_card(96)
    np.testing.assert_allclose(preprocess(load_image(path), card), _mindspore_eval(path, card), atol=ATOL, rtol=0)


def test_load_batch_stacks_nchw(tmp_path):
    paths = [_write_image(tmp_path / f"{i}.jpg", 90 + i, 120, 3, seed=i) for i in range(3)]
    batch = load_batch(paths, make_card(64))
    assert batch.shape == (3, 3, 64, 64) and batch.dtype == np.float32


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 this is not really a jpeg", b"plain text"])
def test_undecodable_image_is_a_data_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken.jpg"):
        load_image(path)


def test_missing_image_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nothing.jpg"):
        load_image(tmp_path / "nothing.jpg")
