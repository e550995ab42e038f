"""`kill -9` in the middle of a run, then `--resume`: it continues after the last committed epoch with
the optimizer and EMA state restored, repeats no finished epoch and loses at most the running one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mindspore as ms
import numpy as np

from toolkit.train import load_config
from toolkit.train.scheduler import create_scheduler

MNV1_TK = str(Path(sys.executable).parent / "mnv1-tk")
STEPS_PER_EPOCH = 15  # num_samples 480 / batch 32


def _command(out: Path) -> list[str]:
    return [MNV1_TK, "train", "-c", "mobilenet_v1_025_digits", "--out", str(out), "--epochs", "3", "--ema",
            "--set", "num_samples=480", "--set", "keep_checkpoint_max=5", "--set", "ema_decay=0.9",
            "--set", "log_interval=5"]


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_resume_after_sigkill(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, GLOG_v="4")
    state = out / "optim_mobilenet_v1_025.ckpt"
    first = subprocess.Popen(_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not state.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert state.exists(), first.stderr.read().decode()
        os.killpg(first.pid, signal.SIGKILL)  # right after the first commit: epoch 2 is running
    finally:
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    committed = ms.load_checkpoint(str(state))
    killed_after = int(committed["progress.epoch"].asnumpy())
    assert killed_after < 3
    epoch_one = out / f"mobilenet_v1_025-1_{STEPS_PER_EPOCH}.ckpt"
    epoch_one_bytes = epoch_one.read_bytes()

    second = subprocess.run(_command(out) + ["--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert f"resumed from mobilenet_v1_025-{killed_after}_{killed_after * STEPS_PER_EPOCH}.ckpt" in second.stderr

    records = _records(out)
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2, 3]  # each epoch exactly once
    assert [r["epoch"] for r in records if r["event"] == "resume"] == [killed_after]
    steps = [r["global_step"] for r in records if r["event"] == "step"]
    assert steps == sorted(set(steps)) == list(range(5, 3 * STEPS_PER_EPOCH + 1, 5))
    # The resumed steps follow the same learning-rate schedule as an uninterrupted run.
    config = load_config("mobilenet_v1_025_digits", {"epoch_size": 3}, ["num_samples=480"])
    lrs = create_scheduler(config.scheduler, STEPS_PER_EPOCH, 3)
    assert all(r["lr"] == lrs[r["global_step"] - 1] for r in records if r["event"] == "step")
    assert epoch_one.read_bytes() == epoch_one_bytes  # a committed epoch is not trained again

    final = ms.load_checkpoint(str(state))
    assert int(final["progress.epoch"].asnumpy()) == 3
    assert int(final["progress.global_step"].asnumpy()) == 3 * STEPS_PER_EPOCH
    # The optimizer's and the EMA's own step counters went on from the committed ones (restored, not
    # restarted at 0, which would end at 45 - 15 * killed_after).
    assert final["global_step"].asnumpy().reshape(-1).tolist() == [3 * STEPS_PER_EPOCH]
    assert int(final["progress.ema_updates"].asnumpy()) == 3 * STEPS_PER_EPOCH
    # The checkpoint holds the EMA weights, the state file the training weights: they differ.
    saved = ms.load_checkpoint(str(out / f"mobilenet_v1_025-3_{3 * STEPS_PER_EPOCH}.ckpt"))
    weight = "features.3.3.weight"
    assert not np.array_equal(saved[weight].asnumpy(), final["train." + weight].asnumpy())
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary files left
