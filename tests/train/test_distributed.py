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
import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _msrun_train(tmp_path, *args: str) -> Path:
    """`mnv1-tk train --distributed` on 2 msrun workers (digits, 1 epoch, batch 16); returns the run folder."""
    out, logs = tmp_path / "run", tmp_path / "logs"
    env = dict(os.environ, GLOG_v="4", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    command = [str(BIN / "msrun"), "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
               f"--log_dir={logs}", "--join=True", str(BIN / "mnv1-tk"), "train", "-c", "mobilenet_v1_025_digits",
               "--distributed", "--epochs", "1", "--batch-size", "16", "--out", str(out), "--set", "log_interval=1",
               *args]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    worker_logs = "\n".join(p.read_text() for p in sorted(logs.glob("worker_*.log")))
    assert run.returncode == 0, worker_logs[-3000:]
    return out


def test_two_workers_end_with_identical_weights(tmp_path):
    out = _msrun_train(tmp_path, "--set", "num_samples=256")

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


def test_clipping_follows_the_all_reduce(tmp_path):
    """One SGD step per worker with clip_value far below the gradient norm: the averaged gradient is clipped,
    so the weights move exactly lr x clip_value (clipping each worker's gradient before averaging would move
    them less: the mean of two differing vectors of norm clip_value is shorter)."""
    from toolkit.models import create_model

    ms.set_seed(7)
    initial = tmp_path / "initial.ckpt"
    ms.save_checkpoint(create_model("mobilenet_v1_025", num_classes=10, activation="relu6"), str(initial))
    out = _msrun_train(tmp_path, "--pretrained", str(initial), "--set", "num_samples=32", "--set", "opt=sgd",
                       "--set", "momentum=0", "--set", "weight_decay=0", "--set", "clip_grad=true",
                       "--set", "clip_value=0.1", "--set", "val_while_train=false")
    start, end = ms.load_checkpoint(str(initial)), ms.load_checkpoint(str(out / "mobilenet_v1_025-1_1.ckpt"))
    other = ms.load_checkpoint(str(out / "rank_1" / "mobilenet_v1_025-1_1.ckpt"))
    trainable = [n for n in end if not n.endswith(("moving_mean", "moving_variance"))]
    assert len(trainable) == 83
    for name in trainable:
        np.testing.assert_array_equal(end[name].asnumpy(), other[name].asnumpy(), err_msg=name)
    step = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert step["event"] == "step" and step["grad_norm"] > 0.5  # the averaged gradient's norm, before clipping
    moved = np.sqrt(sum(np.sum((end[n].asnumpy() - start[n].asnumpy()) ** 2) for n in trainable))
    assert moved == pytest.approx(step["lr"] * 0.1, rel=1e-4)
