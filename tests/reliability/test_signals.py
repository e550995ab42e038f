"""SIGINT (Ctrl-C) and SIGKILL in the middle of long commands.

Ctrl-C reaches the whole foreground process group, so the tests signal the group: `mnv1-tk` must
print one line, exit 130, leave nothing half-written and no child process (the MindSpore Lite
worker) behind. After SIGKILL (nothing can be cleaned up), a re-run must complete with the same
result as an uninterrupted run and no output file may be half-written. Covered: conversion with the
MindSpore Lite converter child running, training (`train`, and `zoo`'s training step: MindSpore turns
Ctrl-C into SIGTERM, see `toolkit.cli._terminated`) and host profiling (`profile`, and `zoo`'s
profiling step). SIGKILL during training and `--resume` are tested in tests/train/test_resume.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.reliability.conftest import MNV1_TK, leftovers, run_cli


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live processes in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, ValueError):
            continue
    return members


def _start(args) -> subprocess.Popen:
    env = dict(os.environ, GLOG_v="4")
    return subprocess.Popen([MNV1_TK, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)


def _wait_for_mslite_child(process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any("converters.mslite.worker" in cmd for _, cmd in group_members(process.pid)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no MindSpore Lite worker appeared: {process.communicate()}")


def _convert_args(models, out: Path) -> list:
    return ["convert", models.files[".onnx"], "--to", "mslite,tflite", "--quant", "none", "--out", out,
            "--num-eval", 8, "--json"]


def _assert_gone(pgid: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(pgid) == []


def test_ctrl_c_during_mslite_conversion(model_set, tmp_path):
    out = tmp_path / "out"
    process = _start(_convert_args(model_set, out))
    _wait_for_mslite_child(process)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["interrupted"] and stdout == ""
    _assert_gone(process.pid)
    assert not out.exists() or leftovers(out) == []


def test_sigkill_during_mslite_conversion_then_rerun(model_set, tmp_path):
    out = tmp_path / "out"
    process = _start(_convert_args(model_set, out))
    _wait_for_mslite_child(process)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and the converter child at once
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    _assert_gone(process.pid)
    finished = [p for p in out.glob("*.*") if not p.name.startswith(".")] if out.exists() else []
    assert all(p.name.endswith(".json") or Path(f"{p}.json").is_file() for p in finished)  # a model has its card

    rerun = run_cli(_convert_args(model_set, out))
    assert rerun.returncode == 0, rerun.stderr
    clean = run_cli(_convert_args(model_set, tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    keys = ("target", "precision", "size_mb", "max_abs_diff", "sqnr_db", "top1_agreement")
    results = [[{k: r[k] for k in keys} for r in json.loads(run.stdout)["outputs"]] for run in (rerun, clean)]
    assert results[0] == results[1]
    assert leftovers(out) == []


def _train_args(out: Path) -> list:
    return ["train", "-c", "mobilenet_v1_025_digits", "--out", out, "--epochs", 2, "--set", "num_samples=320",
            "--set", "val_while_train=False", "--set", "log_interval=1"]


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), process.communicate()


def _ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C to the whole group; the command must end with one line `interrupted` (after the progress
    lines it printed before) and exit 130, leaving no process behind."""
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in stderr
    _assert_gone(process.pid)
    return stdout, stderr


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_ctrl_c_during_training_then_resume(tmp_path):
    out = tmp_path / "run"
    process = _start(_train_args(out))
    _wait_for(out / "optim_mobilenet_v1_025.ckpt", process)  # epoch 1 is committed: epoch 2 is running
    _, stderr = _ctrl_c(process)
    assert all(line.startswith("epoch 1/2 ") for line in stderr.strip().splitlines()[:-1])  # printed after the commit
    assert leftovers(out) == []
    assert sorted(p.name for p in out.glob("*.ckpt")) == ["mobilenet_v1_025-1_10.ckpt", "optim_mobilenet_v1_025.ckpt"]
    assert json.loads((out / "mobilenet_v1_025-1_10.ckpt.json").read_text())["extra"]["epoch"] == 1
    assert [r["epoch"] for r in _metrics(out) if r["event"] == "epoch"] == [1]

    resumed = run_cli([*_train_args(out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from mobilenet_v1_025-1_10.ckpt" in resumed.stderr
    records = _metrics(out)
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == [1, 2]
    assert [r["global_step"] for r in records if r["event"] == "step"] == list(range(1, 21))
    assert (out / "mobilenet_v1_025-2_20.ckpt").is_file() and leftovers(out) == []
