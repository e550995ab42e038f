"""Every case of tests/reliability/cases.py through the CLI: one line `error: ...`, exit 2, no traceback,
nothing half-written. In-process cases run through click's runner; a full disk runs in a child process
under RLIMIT_FSIZE."""

from __future__ import annotations

import pytest

from tests.cli import assert_one_line_error, invoke
from tests.reliability.cases import CASES, calibration_folder, limit_file_size
from tests.reliability.conftest import leftovers, run_cli


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line(case, model_set, tmp_path):
    args = case.build(model_set, tmp_path)
    if case.file_size_limit:
        result = run_cli(args, preexec_fn=limit_file_size(case.file_size_limit))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert all(fragment in lines[0] for fragment in case.expect), lines[0]
    else:
        assert_one_line_error(invoke(*args), *case.expect)
    out = tmp_path / "out"
    assert not out.exists() or leftovers(out) == [], leftovers(out)
    assert leftovers(tmp_path) == []


def test_calibration_skips_a_few_bad_images_with_a_warning(model_set, tmp_path):
    calib = calibration_folder(tmp_path / "calib", 20, {"bad_empty.png": b"", "bad_notes.jpg": b"not an image"})
    result = invoke("convert", model_set.files[".onnx"], "--quant", "int8", "--calib", calib, "--calib-size", 16,
                    "--method", "minmax", "--no-bias-correction", "--out", tmp_path / "out", "--num-eval", 4, "--json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "2 unreadable" in warnings[0], result.stderr
    assert "bad_empty.png" in warnings[0] and "bad_notes.jpg" in warnings[0]
    assert (tmp_path / "out" / "mobilenet_v1_025_32.int8.tflite").is_file()
