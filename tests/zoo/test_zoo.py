"""`mnv1-tk zoo` on the session's trained digits run: the report, labels, and a resume that redoes only
the steps whose inputs changed (the run is copied in, so training itself finds nothing left to do)."""

from __future__ import annotations

import json
import shutil

import pytest

from toolkit.report import pareto_frontier
from toolkit.zoo import MANIFEST, ZooOptions, build_zoo


def _zoo(out, quant="none,int8"):
    steps = []
    entries = build_zoo(ZooOptions(widths=(0.25,), out=out, to="tflite", quant=quant, calib_size=32, threads=(1,),
                                   profile_runs=5), step=steps.append)
    return entries, steps


@pytest.fixture(scope="module")
def zoo_run(trained_digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    shutil.copytree(trained_digits.run_dir, out / "mobilenet_v1_025")
    entries, steps = _zoo(out)
    return out, entries, steps


def test_report_opens_with_the_seed_columns(zoo_run, trained_digits):
    out, entries, _ = zoo_run
    lines = (out / "report.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:5] == ["Model", "Top-1", "Top-5", "Params (M)", "Train s/epoch"]
    assert cells[5:11] == ["Format", "Precision", "MACs (M)", "Size (MB)", "Agree w/ float", "SQNR (dB)"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[lines.index(header) + 2:]]
    assert [(r[5], r[6]) for r in rows] == [("ckpt", "fp32"), ("onnx", "fp32"), ("mindir", "fp32"),
                                            ("tflite", "fp32"), ("tflite", "int8")]
    assert float(rows[0][1]) == pytest.approx(100 * trained_digits.best_top1, abs=0.01)
    assert all(float(r[1]) > 90 for r in rows)  # the int8 model too, on the whole val split
    assert float(rows[0][4]) > 0  # seconds per epoch, from the run's metrics
    assert (out / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    assert json.loads((out / "zoo.json").read_text())[4]["precision"] == "int8"
    assert cells[11:] == ["Runtime", "Host 1T (ms)"]
    assert [r[11] for r in rows] == ["—", "onnxruntime", "—", "litert", "litert"]
    assert all(float(r[12]) > 0 for r in rows if r[11] != "—")
    assert float(rows[3][3]) == pytest.approx(0.22, abs=0.01)  # params of MobileNetV1 0.25 with a 10-class head


def test_pareto_png_and_the_frontier_bundle(zoo_run):
    out, _, _ = zoo_run
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frontier = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| **")]
    assert frontier
    bundled = json.loads((out / "android" / "models.json").read_text())["models"]
    phone = [line.split("|")[6].strip() for line in frontier if line.split("|")[6].strip() == "tflite"]
    assert len(bundled) == len(phone) and all(m["runtime"] == "litert" for m in bundled)


def test_resume_redoes_only_changed_steps(zoo_run):
    out, entries, steps = zoo_run
    assert any("export" in s for s in steps) and any("int8" in s for s in steps)
    again, steps = _zoo(out)
    assert again == entries
    assert [s for s in steps if not s.startswith("profile")] == []  # nothing redone (profiles are cached too)
    fewer, steps = _zoo(out, quant="none")  # only the conversion's inputs changed
    assert [e.precision for e in fewer] == ["fp32"] * 4
    assert not any(word in s for s in steps for word in ("train", "export", "validate"))
    assert any("tflite fp32" in s for s in steps)
    assert "mobilenet_v1_025/convert" in json.loads((out / MANIFEST).read_text())


def test_pareto_frontier_keeps_only_undominated_points():
    points = [(1.0, 0.90), (2.0, 0.95), (2.5, 0.94), (3.0, 0.99), (0.5, 0.80), (3.0, 0.97), (1.0, 0.85)]
    assert pareto_frontier(points) == [4, 0, 1, 3]
