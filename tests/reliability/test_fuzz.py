"""Every model loader fed seeded random and mutated bytes (tests/reliability/fuzz_loaders.py), each format in
its own child process so that a native crash cannot take pytest down: every case must end in a working
model or a ToolkitError (the CLI's one-line error), with no crash and no hang (a time limit per format)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CASES_PER_FORMAT = {".ckpt": 15, ".onnx": 15, ".mindir": 15, ".tflite": 15, ".ms": 10}
SEED = 11


@pytest.mark.parametrize("suffix", list(CASES_PER_FORMAT))
def test_loader_survives_mutated_bytes(suffix, model_set, tmp_path):
    count = CASES_PER_FORMAT[suffix]
    env = dict(os.environ, GLOG_v="4", TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.run([sys.executable, "-m", "tests.reliability.fuzz_loaders", str(model_set.files[suffix]),
                            str(count), str(SEED), str(tmp_path)], capture_output=True, text=True, timeout=240,
                           env=env)
    lines = child.stdout.strip().splitlines()
    assert child.returncode == 0, f"the {suffix} loader crashed on case {lines[-1:]}: {child.stderr[-2000:]}"
    outcomes = dict(line.split() for line in lines)
    assert len(outcomes) == count
    assert set(outcomes.values()) <= {"ok", "ToolkitError"}, outcomes
    assert "ToolkitError" in outcomes.values()
