"""SIGINT (Ctrl-C) and SIGKILL in the middle of long commands.

Ctrl-C reaches the whole foreground process group, so the tests signal the group: `mnv1-tk` must
print one line, exit 130, leave nothing half-written and no child process (the MindSpore Lite
worker) behind. After SIGKILL (nothing can be cleaned up), a re-run must complete with the same
result as an uninterrupted run and no output file may be half-written. Covered: conversion with the
MindSpore Lite converter child running, training (`train`, and `zoo`'s training step: MindSpore turns
Ctrl-C into SIGTERM, see `toolkit.cli._terminated`) and host profiling (`profile`, and `zoo`'s
profiling step). An epoch's files are written as one block that Ctrl-C waits for. SIGKILL during
training and `--resume` are tested in tests/train/test_resume.py.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _start(args, *, terminal: bool = False) -> subprocess.Popen:
    """`mnv1-tk ARGS` in a new process group; `terminal`: rich draws its live progress as on a terminal."""
    env = dict(os.environ, GLOG_v="4", **({"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"} if terminal else {}))
    # bytes: text mode would turn the live display's carriage returns into newlines
    process = subprocess.Popen([MNV1_TK, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               start_new_session=True)
    process.seen = b""  # what _wait_for_output read of stderr
    return process


def _wait_for_mslite_child(process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any("converters.mslite.worker" in cmd for _, cmd in group_members(process.pid)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no MindSpore Lite worker appeared: {_finish(process)}")


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
    stdout, stderr = _finish(process)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["interrupted"] and stdout == ""
    _assert_gone(process.pid)
    assert not out.exists() or leftovers(out) == []


def test_sigkill_during_mslite_conversion_then_rerun(model_set, tmp_path):
    out = tmp_path / "out"
    process = _start(_convert_args(model_set, out))
    _wait_for_mslite_child(process)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and the converter child at once
    _finish(process, timeout=60)
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
    assert path.exists(), _finish(process)


def _ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C to the whole group; the command must end with one line `interrupted` (after the progress
    lines it printed before) and exit 130, leaving no process behind."""
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = _finish(process)
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


DEFERRED_WRITES = """
import os, signal, sys
from pathlib import Path
from toolkit.cli import _terminated
from toolkit.fsutil import interrupts_deferred, write_text

out, signum = Path(sys.argv[1]), int(sys.argv[2])
signal.signal(signal.SIGTERM, _terminated)  # as the CLI does
try:
    with interrupts_deferred():
        write_text(out / "model.ckpt", "weights")
        os.kill(os.getpid(), signum)
        for name in ("model.ckpt.json", "optim.ckpt"):
            write_text(out / name, name)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_waits_for_files_that_belong_together(tmp_path, signum):
    """A checkpoint, its card and the optimizer state are written in one interrupts_deferred() block:
    Ctrl-C (or MindSpore's SIGTERM for it) in the middle stops the command only after the last of them.
    In a fresh process: MindSpore's graph runs in this one have replaced its signal handlers."""
    done = subprocess.run([sys.executable, "-c", DEFERRED_WRITES, str(tmp_path), str(int(signum))],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt", "model.ckpt.json", "optim.ckpt"]


def _screen(text: str) -> list[str]:
    """The lines a terminal shows after `text`: enough of one for rich's live display (CR, erase line,
    cursor up; colours and cursor visibility ignored)."""
    rows, row = [""], 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|[\r\n]|[^\x1b\r\n]+", text):
        if token == "\n":
            row += 1
            rows += [""] * (row + 1 - len(rows))
        elif token == "\x1b[2K":  # rich erases the line after each carriage return, then redraws it
            rows[row] = ""
        elif re.fullmatch(r"\x1b\[\d*A", token):
            row = max(row - int(token[2:-1] or 1), 0)
        elif token != "\r" and not token.startswith("\x1b"):
            rows[row] += token
    return [line for line in rows if line.strip()]


def _wait_for_output(process: subprocess.Popen, text: str, timeout: float = 300) -> None:
    """Read stderr as it comes until `text` shows up."""
    fd = process.stderr.fileno()
    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout
    try:
        while text.encode() not in process.seen and process.poll() is None and time.monotonic() < deadline:
            try:
                process.seen += os.read(fd, 1 << 16)
            except BlockingIOError:
                time.sleep(0.02)
    finally:
        os.set_blocking(fd, True)
    assert text.encode() in process.seen, process.seen[-2000:]


def _finish(process: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    """stdout and the whole of stderr, once the process has ended."""
    stdout, rest = process.communicate(timeout=timeout)
    return stdout.decode(), (process.seen + rest).decode()


def _profile_args(models, out: Path, runs: int = 300) -> list:
    # .ms last: its MindSpore Lite worker is a child process the interruption must take down too
    return ["profile", models.files[".onnx"], models.files[".tflite"], models.files[".ms"], "--runs", runs,
            "--json", out / "latency.json", "--csv", out / "latency.csv", "--plot", out / "latency.png",
            "--accuracy", out.parent / "top1.json"]


def _profile_rows(out: Path) -> tuple[list, list]:
    keys = ("model", "runtime", "threads", "accelerator", "device", "size_bytes", "macs", "params", "runs")
    rows = [{k: r[k] for k in keys} for r in json.loads((out / "latency.json").read_text())["results"]]
    with open(out / "latency.csv", newline="") as handle:
        table = list(csv.reader(handle))
    return rows, [table[0]] + [row[:3] for row in table[1:]]


def test_sigkill_and_ctrl_c_during_profiling(model_set, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    # the plot's y axis: top-1 from a `validate --json` file (these models' cards have none)
    (tmp_path / "top1.json").write_text(json.dumps([{"model": p.name, "top1": 0.5} for p in model_set.files.values()]))
    first = run_cli(_profile_args(model_set, out))
    assert first.returncode == 0, first.stderr
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(written) == ["latency.csv", "latency.json", "latency.png"]
    expected = _profile_rows(out)
    assert [(r["model"], r["threads"]) for r in expected[0]] == [(model_set.files[s].name, 1)
                                                                 for s in (".onnx", ".tflite", ".ms")]

    # The interrupted runs are long enough to be still timing when the signal comes (300 take under a second).
    killed = _start(_profile_args(model_set, out, runs=10**7), terminal=True)
    _wait_for_output(killed, "round ")  # the timed runs are going (models loaded, the worker started)
    os.killpg(killed.pid, signal.SIGKILL)
    _finish(killed)
    assert killed.returncode == -signal.SIGKILL
    _assert_gone(killed.pid)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written  # the earlier results, intact

    interrupted = _start(_profile_args(model_set, out, runs=10**7), terminal=True)
    _wait_for_output(interrupted, "round ")
    os.killpg(interrupted.pid, signal.SIGINT)
    _, stderr = _finish(interrupted)
    assert interrupted.returncode == 130, stderr
    assert _screen(stderr) == ["interrupted"] and "Traceback" not in stderr  # the live display is cleared
    _assert_gone(interrupted.pid)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written

    rerun = run_cli(_profile_args(model_set, out))
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(out) == [] and sorted(p.name for p in out.iterdir()) == sorted(written)
    assert _profile_rows(out) == expected  # the same rows and columns; only the timings differ
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _zoo_args(tmp_path: Path, out: Path) -> list:
    config = tmp_path / "digits.yaml"
    if not config.exists():  # the shipped digits config on 320 training images, validated after the last epoch
        from toolkit.train.config import resolve_config_path

        shipped = resolve_config_path("mobilenet_v1_025_digits").read_text()
        config.write_text(shipped + "num_samples: 320\nval_interval: 2\n")
    return ["zoo", "-c", config, "--widths", "0.25", "--epochs", 2, "--to", "tflite", "--quant", "none",
            "--threads", 1, "--out", out]


def test_zoo_ctrl_c_during_training_and_sigkill_during_profiling(tmp_path):
    out = tmp_path / "zoo"
    run_dir = out / "mobilenet_v1_025"
    process = _start(_zoo_args(tmp_path, out))
    _wait_for(run_dir / "optim_mobilenet_v1_025.ckpt", process)  # epoch 1 is committed: epoch 2 is running
    _ctrl_c(process)
    assert leftovers(out) == [] and not (out / "zoo.json").exists()
    assert sorted(p.name for p in run_dir.glob("*.ckpt")) == ["mobilenet_v1_025-1_10.ckpt",
                                                              "optim_mobilenet_v1_025.ckpt"]

    process = _start(_zoo_args(tmp_path, out))  # resumes training, then goes on to profile
    _wait_for_output(process, "· profile ")
    os.killpg(process.pid, signal.SIGKILL)
    _, stderr = _finish(process)
    assert process.returncode == -signal.SIGKILL
    assert "resumed from mobilenet_v1_025-1_10.ckpt" in stderr
    _assert_gone(process.pid)
    assert leftovers(out) == [] and not (out / "report.md").exists()
    steps = json.loads((out / "zoo.manifest.json").read_text())
    assert "mobilenet_v1_025/convert" in steps and not any(step.startswith("profile/") for step in steps)
    assert len(json.loads((out / "zoo.json").read_text())) == 4

    rerun = run_cli(_zoo_args(tmp_path, out))
    assert rerun.returncode == 0, rerun.stderr
    redone = [line for line in rerun.stderr.splitlines() if line.startswith("· ")]
    assert [line.split()[1] for line in redone] == ["profile", "bundle"]  # the rest came from the manifest
    assert leftovers(out) == []
    entries = json.loads((out / "zoo.json").read_text())
    assert [(e["format"], e["precision"]) for e in entries] == [("ckpt", "fp32"), ("onnx", "fp32"),
                                                                ("mindir", "fp32"), ("tflite", "fp32")]

    lines = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("|")]
    header, *rows = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in lines]
    rows = [dict(zip(header, row)) for row in rows[1:]]
    assert [(r["Format"], r["Precision"], float(r["Top-1"]), float(r["Size (MB)"])) for r in rows] == \
        [(e["format"], e["precision"], round(100 * e["top1"], 2), round(e["size_mb"], 2)) for e in entries]
    assert [r["Runtime"] for r in rows] == ["—", "onnxruntime", "—", "litert"]  # a latency for each deployable file
    assert all(float(r["Host 1T (ms)"]) > 0 for r in rows if r["Runtime"] != "—")
    assert {(r["Params (M)"], r["MACs (M)"]) for r in rows} == {("0.221", "0.8")}
