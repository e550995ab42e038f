"""Issue 3 parity: float32 .tflite in LiteRT vs ONNX Runtime on the source ONNX, and the fp16 variant.

Full-depth MobileNetV1 at every width, at 224 and 128, on a few digits eval images (the 224 models
are costly, so a batch of four). Weights are random but realistic (He-scaled convs, random biases).
"""

import numpy as np
import pytest

from tests.convert.graphs import make_card, save_onnx
from tests.onnx_models import mobilenet_like, run_onnxruntime
from toolkit.convert import ConvertOptions, convert, eval_batch
from toolkit.models.mobilenetv1 import BLOCKS, WIDTHS
from toolkit.runtimes import load_predictor

FP32_ATOL = 1e-4
FP16_ATOL = 1e-2
# Exporters other than MindSpore: folded BN (Conv with bias), ReLU or Clip, GlobalAveragePool or
# ReduceMean, Flatten + Gemm or MatMul + Add.
OTHER_EXPORTERS = {
    0.25: dict(activation="relu6", head="gemm", pool="global"),
    0.5: dict(activation="relu", head="matmul_add", pool="global"),
    0.75: dict(activation="relu6", head="matmul_add", pool="reduce_mean"),
    1.0: dict(activation="relu", head="gemm", pool="reduce_mean"),
}


@pytest.mark.slow
@pytest.mark.parametrize("image_size", [224, 128])
@pytest.mark.parametrize("width", WIDTHS)
def test_onnx_from_another_exporter(tmp_path, width, image_size):
    model = mobilenet_like(image_size, width, num_classes=10, folded_bn=True, blocks=BLOCKS, opset=13,
                           seed=int(width * 100), **OTHER_EXPORTERS[width])
    card = make_card(image_size, width=width, model=f"mobilenet_v1_{round(width * 100):03d}")
    source = save_onnx(model, tmp_path, card)
    fp32, fp16 = convert(source, ConvertOptions(quant="none,fp16", num_eval=4))
    images = eval_batch(card, None, 4)
    reference = run_onnxruntime(model, images)
    assert np.abs(reference).max() > 1  # logits of a realistic scale, not a collapsed network
    np.testing.assert_allclose(load_predictor(fp32.path).run(images), reference, atol=FP32_ATOL, rtol=0)
    np.testing.assert_allclose(load_predictor(fp16.path).run(images), reference, atol=FP16_ATOL, rtol=0)
    assert fp32.max_abs_diff <= FP32_ATOL and fp16.max_abs_diff <= FP16_ATOL  # convert's own check agrees
