"""Data: datasets on MindSpore's dataset engine and mindcv's transforms."""

from toolkit.data.datasets import (
    DATASETS, DatasetSpec, canonical_name, create_dataset, dataset_labels, load_digits, pipeline_error,
)
from toolkit.data.transforms import AugmentConfig, create_loader, create_transforms, eval_resize_size

__all__ = [
    "DATASETS", "AugmentConfig", "DatasetSpec", "canonical_name", "create_dataset", "create_loader",
    "create_transforms", "dataset_labels", "eval_resize_size", "load_digits", "pipeline_error",
]
