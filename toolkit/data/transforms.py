"""Image transforms as mindcv defines them for ImageNet, on MindSpore's dataset engine.

train: random-resized-crop, horizontal flip, colour jitter, normalise, HWC -> CHW
eval:  resize the shorter side to int(size / crop_pct), centre crop, normalise, HWC -> CHW
"""

from __future__ import annotations

from dataclasses import dataclass

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area")


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation, with mindcv's key names and defaults."""

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (0.75, 1.333)
    hflip: float = 0.5
    vflip: float = 0.0
    color_jitter: float = 0.4


def _inter(name: str):
    from mindspore.dataset.vision import Inter

    return {"bilinear": Inter.BILINEAR, "nearest": Inter.NEAREST, "bicubic": Inter.BICUBIC, "area": Inter.AREA}[name]


def eval_resize_size(image_size: int, crop_pct: float) -> int:
    """The shorter side before the centre crop, as mindcv computes it."""
    return int(image_size / crop_pct)


def create_transforms(training: bool, image_size: int, mean, std, crop_pct: float = 0.875,
                      interpolation: str = "bilinear", augment: AugmentConfig | None = None) -> list:
    """The list of MindSpore vision ops for one split; map it over the `image` column."""
    import mindspore.dataset.vision as vision

    inter = _inter(interpolation)
    if training:
        aug = augment or AugmentConfig()
        ops = [vision.RandomResizedCrop(image_size, scale=tuple(aug.scale), ratio=tuple(aug.ratio),
                                        interpolation=inter)]
        if aug.hflip > 0:
            ops.append(vision.RandomHorizontalFlip(prob=aug.hflip))
        if aug.vflip > 0:
            ops.append(vision.RandomVerticalFlip(prob=aug.vflip))
        if aug.color_jitter > 0:
            cj = aug.color_jitter
            ops.append(vision.RandomColorAdjust(brightness=cj, contrast=cj, saturation=cj))
    else:
        ops = [vision.Resize(eval_resize_size(image_size, crop_pct), interpolation=inter),
               vision.CenterCrop(image_size)]
    ops += [vision.Normalize(mean=list(mean), std=list(std)), vision.HWC2CHW()]
    return ops


def create_loader(dataset, transforms: list, batch_size: int, drop_remainder: bool = False,
                  num_parallel_workers: int = 2, repeat: int = 1):
    """Map the transforms over `image` and batch."""
    loader = dataset.map(operations=transforms, input_columns="image", num_parallel_workers=num_parallel_workers)
    loader = loader.batch(batch_size, drop_remainder=drop_remainder)
    return loader.repeat(repeat) if repeat > 1 else loader
