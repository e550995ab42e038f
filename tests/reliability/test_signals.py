"""SIGINT (Ctrl-C) and SIGKILL in the middle of long commands.

Ctrl-C reaches the whole foreground process group, so the tests signal the group: `mnv1-tk` must
print one line, exit 130, leave nothing half-written and no child process (the MindSpore Lite
worker) behind. After SIGKILL (nothing can be cleaned up), a re-run must complete with the same
result as an uninterrupted run and no output file may be half-written. SIGKILL during training and
`--resume` are tested in tests/train/test_resume.py. Ctrl-C during training is not here: MindSpore's dataset
workers answer a group SIGINT by ending the trainer with SIGTERM (see the README's sweep table).
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
