"""MobileNetV1 ONNX written the way PyTorch's exporter writes it (shape subgraphs around SAME padding,
a dynamic batch, Flatten or view, Gemm or MatMul + Add, BN folded or not, opsets 11 to 18), without a
model card: converted to float .tflite within 1e-4 of ONNX Runtime, and to int8 within the int8 gate."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from converters.onnx_import import import_onnx
from tests.external.torch_style import torch_style_mobilenet
from toolkit.card import card_path, load_card
from toolkit.convert import PRECISIONS, ConvertOptions, QuantOptions, convert

FAST_INT8 = QuantOptions(calib="digits", calib_size=32, method="minmax", bias_correction=False)

VARIANTS = {  # (exporter options, precisions)
    # width, size: 40 gives odd maps (5, 3): asymmetric SAME padding at every stride-2 layer
    "w0.25-s40-opset11-flatten-gemm": (dict(width=0.25, image_size=40, opset=11), ("none", "int8")),
    "w0.5-s48-opset13-view-matmul-bn": (dict(width=0.5, image_size=48, opset=13, flatten="view", head="matmul_add",
                                             folded_bn=False), ("none", "int8")),
    "w0.75-s32-opset18-mean-relu": (dict(width=0.75, image_size=32, opset=18, pool="mean", activation="relu"),
                                    ("none",)),
    "w1.0-s64-opset15-symmetric-pads": (dict(width=1.0, image_size=64, opset=15, same_pad=False,
                                             blocks=((64, 1), (128, 2), (256, 2))), ("none",)),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_exporter_onnx_converts_without_a_card(tmp_path, variant):
    kwargs, precisions = VARIANTS[variant]
    model = torch_style_mobilenet(num_classes=12, seed=len(variant), **kwargs)
    shape_ops = {n.op_type for n in model.graph.node} & {"Shape", "Gather", "ConstantOfShape", "Slice", "Concat"}
    assert shape_ops or not kwargs.get("same_pad", True)
    source = tmp_path / "exported.onnx"
    onnx.save(model, source)
    fp32, *int8 = convert(source, ConvertOptions(quant=precisions, num_eval=8, quantization=FAST_INT8))
    assert fp32.max_abs_diff <= 1e-4, fp32  # against ONNX Runtime on the exported file itself
    for result in int8:
        assert result.sqnr_db >= PRECISIONS["int8"].min_sqnr_db and result.top1_agreement >= 0.75, result
    card = load_card(fp32.path)
    assert (card.image_size, card.num_classes, card.width, card.input_layout) == \
        (kwargs["image_size"], 12, kwargs["width"], "NHWC")
    assert card.source == "exported.onnx" and card.extra["card"] == "inferred"
    assert not card_path(source).exists()  # nothing written next to the source


def test_shape_subgraphs_are_folded_into_conv_padding():
    """Every Pad of the exporter ends up as the conv's own (asymmetric) padding: no op outside the IR."""
    graph = import_onnx(torch_style_mobilenet(image_size=40, opset=17))
    assert set(graph.op_counts()) <= {"conv2d", "depthwise_conv2d", "relu6", "mean", "reshape", "fully_connected"}
    strided = [n for n in graph.nodes if n.op in ("conv2d", "depthwise_conv2d") and n.attrs["strides"] == (2, 2)]
    assert {n.attrs["pads"] for n in strided} == {(0, 0, 1, 1), (1, 1, 1, 1)}  # even maps, odd maps (TF SAME)
    assert graph.tensors[graph.inputs[0]].shape == (1, 3, 40, 40)


def test_dynamic_batch_source_runs_on_any_batch(tmp_path):
    """The source keeps its dynamic batch (ORT runs the eval batch at once); the outputs have batch 1."""
    from toolkit.runtimes import load_predictor

    source = tmp_path / "dynamic.onnx"
    onnx.save(torch_style_mobilenet(opset=12), source)
    with load_predictor(source) as predictor:
        assert predictor.input_spec.shape[0] == -1
        images = np.random.RandomState(0).randn(5, 3, 32, 32).astype(np.float32)
        together = predictor.run(images)
        assert np.allclose(together, np.concatenate([predictor.run(images[i:i + 1]) for i in range(5)]), atol=1e-5)
