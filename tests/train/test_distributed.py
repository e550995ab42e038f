"""Data-parallel training under msrun with 2 CPU workers: gradients are really all-reduced.

Each worker trains on its own shard, so without the all-reduce the replicas would drift apart. After
training, every trainable parameter must be identical on both ranks, while the BatchNorm moving
statistics (which are not reduced) differ, which proves that the shards were different.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_end_with_identical_weights(tmp_path):
    out, logs = tmp_path / "run", tmp_path / "logs"
    env = dict(os.environ, GLOG_v="4", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [str(BIN / "msrun"), "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
               f"--log_dir={logs}", "--join=True", str(BIN / "mnv1-tk"), "train", "-c", "mobilenet_v1_025_digits",
               "--distributed", "--epochs", "1", "--batch-size", "16", "--out", str(out),
               "--set", "num_samples=256", "--set", "log_interval=1"]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    worker_logs = "\n".join(p.read_text() for p in sorted(logs.glob("worker_*.log")))
    assert run.returncode == 0, worker_logs[-3000:]

    steps = 256 // 2 // 16  # each rank: half of the 256 images, batch 16
    rank0 = ms.load_checkpoint(str(out / f"mobilenet_v1_025-1_{steps}.ckpt"))
    rank1 = ms.load_checkpoint(str(out / "rank_1" / f"mobilenet_v1_025-1_{steps}.ckpt"))
    trainable = [n for n in rank0 if not n.endswith(("moving_mean", "moving_variance"))]
    assert len(trainable) == 83 and set(rank0) == set(rank1)
    for name in trainable:
        np.testing.assert_array_equal(rank0[name].asnumpy(), rank1[name].asnumpy(), err_msg=name)
    differing_stats = [n for n in rank0 if n.endswith("moving_mean")
                       and not np.array_equal(rank0[n].asnumpy(), rank1[n].asnumpy())]
    assert len(differing_stats) == 27  # every one of the 27 BNs saw a different shard

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in records if r["event"] == "epoch"][0]
    assert epoch["global_step"] == steps and len([r for r in records if r["event"] == "step"]) == steps
    assert epoch["val_count"] >= 359  # validation shards summed over both workers (padded to equal halves)
    assert not (out / "rank_1" / "metrics.jsonl").exists()  # only rank 0 writes the run's files
