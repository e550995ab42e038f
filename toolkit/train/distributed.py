"""MindSpore context and data-parallel setup: `msrun ... mnv1-tk train --distributed` (HCCL on Ascend,
NCCL on GPU, MindSpore's own collectives on CPU). Gradients are averaged over the workers by the
train cell's gradient reducer."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from toolkit.errors import ConfigError
from toolkit.train.config import SystemConfig

# Variables msrun (or a rank table launch) sets for every worker.
LAUNCHER_VARIABLES = ("MS_ROLE", "MS_WORKER_NUM", "RANK_TABLE_FILE")


@dataclass(frozen=True)
class Workers:
    """This process's place among the data-parallel workers."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> dict:
        """Keyword arguments for `create_dataset`."""
        return {"num_shards": self.size, "shard_id": self.rank} if self.size > 1 else {}


def setup(system: SystemConfig) -> Workers:
    """Set the device, execution mode and seeds; join the worker group when distributed."""
    import mindspore as ms
    import mindspore.dataset as ds

    ms.set_context(mode=system.mode, device_target=system.device_target)
    workers = Workers()
    if system.distributed:
        if not any(v in os.environ for v in LAUNCHER_VARIABLES):
            raise ConfigError("--distributed needs the workers that msrun starts",
                              "launch with: msrun --worker_num=N --local_worker_num=N mnv1-tk train --distributed ...")
        from mindspore.communication import get_group_size, get_rank, init

        init()
        workers = Workers(get_rank(), get_group_size())
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                     device_num=workers.size)
    # The same seed on every worker: identical initial weights and disjoint shards of one shuffle.
    ms.set_seed(system.seed)
    ds.config.set_seed(system.seed)
    np.random.seed(system.seed)
    return workers


def all_reduce_sum(values: np.ndarray, workers: Workers) -> np.ndarray:
    """Sum a small float array over the workers (identity for one worker)."""
    if workers.size == 1:
        return values
    import mindspore as ms
    from mindspore import ops

    return ops.AllReduce()(ms.Tensor(np.asarray(values, np.float32))).asnumpy()
