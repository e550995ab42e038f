"""`toolkit.convert` on ONNX sources: outputs, cards, metadata, the tolerance gate and option checking."""

import json

import numpy as np
import pytest

from converters.tflite.metadata import read_metadata
from tests.convert.graphs import make_card, save_onnx
from tests.onnx_models import mobilenet_like
from toolkit.card import load_card
from toolkit.convert import PRECISIONS, ConvertOptions, Precision, convert
from toolkit.errors import AtolError, ConfigError, DataError, ModelCardError, ModelFileError


@pytest.fixture()
def onnx_source(tmp_path):
    return save_onnx(mobilenet_like(image_size=32, folded_bn=False), tmp_path, make_card(32))


def test_convert_writes_checked_fp32_and_fp16_models_with_cards(onnx_source, tmp_path):
    out = tmp_path / "out"
    results = convert(onnx_source, ConvertOptions(quant="none,fp16", out_dir=out, num_eval=8))
    assert [(r.target, r.precision, r.path.name) for r in results] == [
        ("tflite", "fp32", "mobilenet_v1_025_32.fp32.tflite"), ("tflite", "fp16", "mobilenet_v1_025_32.fp16.tflite")]
    fp32, fp16 = results
    assert fp32.max_abs_diff <= 1e-4 and fp16.max_abs_diff <= 1e-2 and fp32.num_eval == 8
    assert fp16.size_mb < 0.75 * fp32.size_mb
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [r.path.name for r in results] + [r.path.name + ".json" for r in results])
    card = load_card(fp16.path)
    assert (card.format, card.precision, card.input_layout, card.input_dtype, card.source) == (
        "tflite", "fp16", "NHWC", "float32", onnx_source.name)
    assert card.input_shape == (1, 32, 32, 3)
    assert read_metadata(fp16.path.read_bytes())["labels"] == list(card.labels)
    json.dumps([r.to_dict() for r in results])


def test_output_beyond_tolerance_is_not_written(onnx_source, tmp_path, monkeypatch):
    import converters.passes.to_fp16 as fp16_pass

    def shift_biases(graph):
        graph = graph.copy()
        for node in graph.nodes:
            if node.op == "fully_connected":
                graph.tensors[node.inputs[2]].data = graph.tensors[node.inputs[2]].data + np.float32(0.05)
        return graph

    monkeypatch.setattr(fp16_pass, "to_fp16", shift_biases)  # a broken transform: every logit off by 0.05
    monkeypatch.setitem(PRECISIONS, "fp16", Precision("fp16", atol=1e-2))
    out = tmp_path / "out"
    with pytest.raises(AtolError, match="beyond the fp16 gate"):
        convert(onnx_source, ConvertOptions(quant="fp16", out_dir=out, num_eval=4))
    assert not out.exists()  # nothing written, not even the directory it created
    (result,) = convert(onnx_source, ConvertOptions(quant="fp16", out_dir=out, num_eval=4, check=False))
    assert not result.within_tolerance and result.max_abs_diff == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("options, error, message", [
    (ConvertOptions(width="0.3"), ConfigError, "--width 0.3 is not a MobileNetV1 width"),
    (ConvertOptions(width="0.5"), ConfigError, "has width 0.25"),
    (ConvertOptions(width="all"), ConfigError, "needs a directory"),
    (ConvertOptions(to="coreml"), ConfigError, "unknown target coreml"),
    (ConvertOptions(quant="int4"), ConfigError, "unknown precision int4"),
    (ConvertOptions(image_size=64), ConfigError, "fixed at 32x32"),
])
def test_bad_options_are_refused_before_any_work(onnx_source, tmp_path, options, error, message):
    with pytest.raises(error, match=message):
        convert(onnx_source, ConvertOptions(**{**options.__dict__, "out_dir": tmp_path / "out"}))
    assert not (tmp_path / "out").exists()


def test_source_problems(tmp_path, onnx_source):
    with pytest.raises(ModelFileError, match="does not exist"):
        convert(tmp_path / "nothing.onnx")
    (tmp_path / "model.pb").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="cannot convert from .pb"):
        convert(tmp_path / "model.pb")
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="is not a TFLite model"):
        convert(tmp_path / "model.tflite")
    (tmp_path / "bare.ckpt").write_bytes(b"x")
    with pytest.raises(ModelCardError, match="pass --image-size"):
        convert(tmp_path / "bare.ckpt")


def test_width_all_needs_every_width_in_the_directory(tmp_path):
    with pytest.raises(ConfigError, match="pass --width all"):
        convert(tmp_path)
    with pytest.raises(DataError, match="no checkpoint .* for width 0.25, 0.5, 0.75, 1.0"):
        convert(tmp_path, ConvertOptions(width="all"))


@pytest.mark.slow
def test_width_all_converts_every_checkpoint_of_the_directory(zoo_checkpoints, tmp_path):
    results = convert(zoo_checkpoints, ConvertOptions(width="all", image_size=32, out_dir=tmp_path, num_eval=8))
    assert [(r.width, r.path.name) for r in results] == [
        (w, f"mobilenet_v1_{n}_32.fp32.tflite") for w, n in ((0.25, "025"), (0.5, "050"), (0.75, "075"), (1.0, "100"))]
    assert all(r.max_abs_diff <= 1e-4 and r.source.suffix == ".ckpt" for r in results)
    (one,) = convert(zoo_checkpoints, ConvertOptions(width="0.75", image_size=32, out_dir=tmp_path, num_eval=4))
    assert one.path == results[2].path


def test_directory_picks_the_best_or_latest_checkpoint_per_width(zoo_checkpoints, tmp_path):
    import shutil

    from toolkit.card import save_card
    from toolkit.convert import _checkpoints_by_width

    run = tmp_path / "run"
    run.mkdir()
    source = zoo_checkpoints / "mobilenet_v1_050.ckpt"
    card = load_card(source)
    for name, epoch in (("mobilenet_v1_050-1_10.ckpt", 1), ("mobilenet_v1_050-2_20.ckpt", 2)):
        shutil.copy(source, run / name)
        save_card(card.replace(extra={"epoch": epoch, "global_step": 10 * epoch}), run / name)
    shutil.copy(source, run / "optim_mobilenet_v1_050.ckpt")  # optimizer state: no card, ignored
    assert _checkpoints_by_width(tmp_path) == {0.5: run / "mobilenet_v1_050-2_20.ckpt"}
    shutil.copy(source, run / "mobilenet_v1_050_best.ckpt")
    save_card(card.replace(extra={"epoch": 1, "global_step": 10}), run / "mobilenet_v1_050_best.ckpt")
    assert _checkpoints_by_width(tmp_path) == {0.5: run / "mobilenet_v1_050_best.ckpt"}
    (run / "mobilenet_v1_050_best.ckpt").unlink()
    shutil.copy(source, run / "copy.ckpt")
    save_card(card.replace(extra={"epoch": 2, "global_step": 20}), run / "copy.ckpt")
    with pytest.raises(DataError, match="several checkpoints of width 0.5"):
        _checkpoints_by_width(tmp_path)
