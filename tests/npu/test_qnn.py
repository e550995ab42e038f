"""The compile path to the Hexagon NPU, on the x86_64 HTP emulator: convert -> EPContext ONNX -> validate.

The emulator runs the compiled context binary with ONNX Runtime's CPU fallback disabled, so every
number here comes from the HTP's own integer kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from converters.qnn import SOC_MODELS, compile_epcontext, setup_qnn
from converters.qnn.session import htp_options, open_session
from converters.qnn.smoke import tiny_qdq
from tests.cli import assert_one_line_error, invoke
from toolkit.convert import ConvertOptions, QuantOptions, convert
from toolkit.data import DatasetSpec
from toolkit.errors import ModelFileError, UnsupportedOpError
from toolkit.runtimes import load_predictor
from toolkit.runtimes.qnn import QnnPredictor
from toolkit.validate import eval_batches


@pytest.fixture(scope="module")
def compiled_digits(trained_digits, qnn_install, tmp_path_factory):
    """The trained digits model converted to int8 .tflite and compiled for SM8650, from one plan."""
    out = tmp_path_factory.mktemp("qnn_digits")
    options = ConvertOptions(to="tflite,qnn", quant="int8", out_dir=out, num_eval=8, soc="SM8650",
                             quantization=QuantOptions(calib="digits", calib_size=200))
    results = {r.target: r for r in convert(trained_digits.onnx, options)}
    return results["tflite"].path, results["qnn-SM8650"].path


def test_setup_is_idempotent(qnn_install):
    report = setup_qnn(qnn_install.root, quiet=True)
    assert [s["step"] for s in report.steps] == ["check"]


def test_digits_on_the_emulator_match_our_tflite(compiled_digits, trained_digits):
    tflite, compiled = compiled_digits
    assert compiled.name == "mobilenet_v1_025_32.int8.SM8650.onnx"
    nodes = onnx.load(str(compiled)).graph.node
    assert [n.op_type for n in nodes] == ["EPContext"]  # the whole graph runs on the HTP
    images, labels = zip(*eval_batches(trained_digits.card, DatasetSpec("digits"), "val"))
    images, labels = np.concatenate(images), np.concatenate(labels)
    with load_predictor(compiled) as npu, load_predictor(tflite) as cpu:
        assert isinstance(npu, QnnPredictor)
        on_npu, on_cpu = npu.run(images), cpu.run(images)
    top1 = {name: float(np.mean(logits.argmax(1) == labels)) for name, logits in (("npu", on_npu), ("cpu", on_cpu))}
    assert abs(top1["npu"] - top1["cpu"]) <= 0.003, top1
    assert top1["npu"] > 0.85


def test_every_listed_soc_compiles(qnn_install, tmp_path):
    model, _ = tiny_qdq()
    for soc, soc_model in SOC_MODELS.items():
        compiled = compile_epcontext(model, tmp_path / f"tiny.{soc}.onnx", soc, qnn_install, what="tiny")
        assert compiled.soc_model == soc_model and compiled.context_bytes > 1000


def test_corrupt_context_binary_is_one_error(compiled_digits, tmp_path):
    model = onnx.load(str(compiled_digits[1]))
    context = next(a for a in model.graph.node[0].attribute if a.name == "ep_cache_context")
    context.s = bytes(256) + context.s[256:]  # its header
    damaged = tmp_path / compiled_digits[1].name
    onnx.save(model, str(damaged))
    Path(f"{damaged}.json").write_bytes(Path(f"{compiled_digits[1]}.json").read_bytes())
    with pytest.raises(ModelFileError, match="context binary does not load"):
        load_predictor(damaged)


def test_a_layer_the_htp_rejects_is_named(qnn_install):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="stem_relu"),
             helper.make_node("NonZero", ["r"], ["indices"], name="head_nonzero")]
    graph = helper.make_graph(nodes, "rejected", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("indices", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match=r"head_nonzero \(NonZero\)"):
        open_session(model.SerializeToString(), htp_options(qnn_install, SOC_MODELS["SM8650"]), what="the model")


def test_bad_input_is_one_line(trained_digits, tmp_path, monkeypatch):
    source = trained_digits.onnx
    assert_one_line_error(invoke("convert", source, "--to", "qnn", "--soc", "SM1234", "--quant", "int8",
                                 "--calib", "digits", "--out", tmp_path), "unknown SoC SM1234", "SM8650")
    assert_one_line_error(invoke("convert", source, "--to", "qnn", "--soc", "SM8650", "--out", tmp_path),
                          "qnn output has no fp32 precision", "--quant int8")
    assert_one_line_error(invoke("convert", source, "--to", "qnn", "--quant", "int8", "--calib", "digits",
                                 "--out", tmp_path), "--soc")
    monkeypatch.setenv("QAIRT_ROOT", str(tmp_path / "no-qairt-here"))  # LiteRT's AOT route needs a real QAIRT
    assert_one_line_error(invoke("convert", source, "--to", "tflite", "--quant", "int8", "--calib", "digits",
                                 "--npu", "qualcomm:SM8650", "--out", tmp_path), "needs QAIRT", "QAIRT_ROOT")
    monkeypatch.setenv("MNV1TK_QNN_DIR", str(tmp_path / "no-qnn-here"))
    assert_one_line_error(invoke("convert", source, "--to", "qnn", "--soc", "SM8650", "--quant", "int8",
                                 "--calib", "digits", "--out", tmp_path), "QNN is not set up", "mnv1-tk setup qnn")
    assert not list(tmp_path.glob("*.onnx"))


def test_float_classifier_compiles_for_the_htp(trained_digits, qnn_install, tmp_path):
    """`--classifier float`: the HTP runs the int8 layers and the float classifier (no CPU fallback), and
    computes LiteRT's logits up to its own integer kernels."""
    from quantize.metrics import compare

    options = ConvertOptions(to="tflite,qnn", quant="int8", out_dir=tmp_path, num_eval=8, soc="SM8650",
                             quantization=QuantOptions(calib="digits", calib_size=200, adaround=False,
                                                       classifier="float"))
    results = {r.target: r for r in convert(trained_digits.onnx, options)}
    images, _ = zip(*eval_batches(trained_digits.card, DatasetSpec("digits"), "val", limit=64))
    images = np.concatenate(images)
    with load_predictor(results["tflite"].path, builtin_only=True) as litert, \
            load_predictor(results["qnn-SM8650"].path) as htp:
        ours, theirs = litert.run(images), htp.run(images)
    assert compare(ours, theirs)["sqnr_db"] > 30
    assert float(np.mean(ours.argmax(1) == theirs.argmax(1))) >= 0.98
