"""Host profiling through the runtime registry: statistics, interleaving, outputs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import assert_one_line_error, invoke


def test_profile_every_host_runtime(profile_models):
    from converters.ir.stats import count_macs, count_params
    from converters.onnx_import import import_onnx
    from toolkit.profile import ProfileOptions, profile

    models = [profile_models.onnx, profile_models.tflite, profile_models.ms]
    results = profile(models, ProfileOptions(threads=(1, 2), runs=8, warmup=1))
    assert [(r.runtime, r.threads) for r in results] == [
        ("onnxruntime", 1), ("onnxruntime", 2), ("litert", 1), ("litert", 2), ("mslite", 1), ("mslite", 2)]
    graph = import_onnx(profile_models.onnx)
    for r in results:
        assert r.runs == 8 and r.device is None and r.accelerator == "cpu"
        assert 0 < r.min_ms <= r.median_ms <= r.p90_ms <= r.p99_ms and r.std_ms >= 0
        assert r.init_ms > 0 and r.first_ms > 0 and r.peak_rss_mb >= 0
        assert r.size_bytes == Path(r.path).stat().st_size
        # The same network in three formats: the same MACs and parameters from each file's graph.
        assert (r.macs, r.params) == (count_macs(graph), count_params(graph))
    assert results[-1].peak_rss_mb > 10  # the MindSpore Lite worker process, runtime loaded


def test_rounds_alternate_direction(profile_models, monkeypatch):
    from toolkit.profile import ProfileOptions, profile
    from toolkit.runtimes.litert import LiteRTPredictor

    calls = []
    original = LiteRTPredictor.inference_timer

    def recording_timer(self, batch):
        timer = original(self, batch)
        return lambda: calls.append(self.interpreter) or timer()

    monkeypatch.setattr(LiteRTPredictor, "inference_timer", recording_timer)
    profile([profile_models.tflite], ProfileOptions(threads=(1, 2), runs=4, warmup=0))
    first, second = calls[0], calls[1]  # first inference of each, in load order
    assert calls[2:] == [first, second, second, first, first, second, second, first]


def test_cli_table_files_and_plot(profile_models, tmp_path):
    out = tmp_path / "out"
    result = invoke("profile", profile_models.onnx, "--threads", "1", "--runs", "3", "--warmup", "0",
                    "--baseline", profile_models.tflite, "--json", out / "p.json", "--csv", out / "p.csv",
                    "--plot", out / "p.png")
    assert result.exit_code == 0, result.output
    assert "interleaved round robin" in result.output and "order reversed every round" in result.output
    data = json.loads((out / "p.json").read_text())
    rows = {r["model"]: r for r in data["results"]}
    assert data["baseline"] == "my model.fp32.tflite" and rows["my model.fp32.tflite"]["ratio_to_baseline"] == 1.0
    onnx_row = rows["mobilenet_v1_025_32.onnx"]
    baseline = rows["my model.fp32.tflite"]
    assert onnx_row["ratio_to_baseline"] == pytest.approx(onnx_row["median_ms"] / baseline["median_ms"])
    assert (out / "p.csv").read_text().splitlines()[0].startswith("model,runtime,threads")
    assert (out / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front():
    from toolkit.profile.report import pareto_front

    points = [(10.0, 70.0), (5.0, 60.0), (12.0, 69.0), (20.0, 72.0), (5.0, 55.0)]
    assert pareto_front(points) == [1, 0, 3]


@pytest.mark.parametrize("args, fragments", [
    (["--ops"], ("--ops reads the on-device runners", "--device")),
    (["--accelerator", "gpu"], ("needs a phone", "--device")),
    (["--runtime", "mslite"], ("--runtime mslite cannot run", "litert")),
    (["--threads", "0"], ("--threads 0 is not valid",)),
    (["--device", "auto", "--accelerator", "gpu:0"], ("unknown accelerator 'gpu:0'",)),
])
def test_bad_host_options(profile_models, args, fragments):
    assert_one_line_error(invoke("profile", profile_models.tflite, *args), *fragments)


def test_missing_model(tmp_path):
    assert_one_line_error(invoke("profile", tmp_path / "nope.tflite"), "does not exist")


def test_profile_a_model_without_card(profile_models, tmp_path, monkeypatch):
    """A card-less ONNX is profiled with its card inferred, and the card options reach the predictor."""
    import shutil

    import toolkit.profile.host as host

    seen = []
    load = host.load_predictor
    monkeypatch.setattr(host, "load_predictor", lambda path, **kw: seen.append(kw) or load(path, **kw))

    bare = tmp_path / "exported elsewhere.onnx"
    shutil.copy(profile_models.onnx, bare)
    out = tmp_path / "p.json"
    result = invoke("profile", bare, "--runs", "2", "--warmup", "0", "--input-range", "0-255", "--json", out)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["results"]
    assert row["model"] == bare.name and row["median_ms"] > 0 and row["macs"] > 0
    assert seen[0]["card_overrides"] == {"input_range": "0-255"}


def test_plot_without_accuracies_fails_before_profiling(profile_models, tmp_path):
    """No card with a top-1 and no --accuracy: one line before any timing, and no --json half of the results."""
    import shutil

    bare = tmp_path / "no accuracy.onnx"
    shutil.copy(profile_models.onnx, bare)  # no card: nothing says its top-1
    result = invoke("profile", bare, "--json", tmp_path / "p.json", "--plot", tmp_path / "p.png")
    assert_one_line_error(result, "no accuracy for any profiled model", "--accuracy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no accuracy.onnx"]
