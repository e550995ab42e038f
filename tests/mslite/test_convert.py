"""`.ms` through the real MindSpore Lite 2.0 converter and runtime, against ONNX Runtime and LiteRT."""

import math

import numpy as np
import onnxruntime as ort
import pytest

from converters.mslite import convert_to_ms, write_mslite
from converters.onnx_import import import_onnx
from converters.passes import lower_for_tflite
from converters.tflite import write_tflite
from tests.convert.graphs import int8_graph, run_tflite
from tests.models import ZOO_SIZE
from toolkit.card import load_card
from toolkit.models import WIDTHS
from toolkit.runtimes import load_predictor

# float32 kernels that sum in another order than ONNX Runtime's differ by a few ULPs of the largest
# partial sums; over 28 layers and logits of a few units that is ~1e-6 (measured), well inside 1e-4.
FP32_ATOL = 1e-4
# A working 8-bit model: per-tensor activations over 28 layers keep the logits' SQNR above ~20 dB
# (measured 24 dB with MAX_MIN); a model that quantizes the wrong thing (layout, ranges) is near 0 dB.
MIN_SQNR_DB = 15.0


def images(count, size, seed=0):
    return np.random.RandomState(seed).randn(count, 3, size, size).astype(np.float32)


def onnxruntime(path, batch):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in batch])


def sqnr_db(reference, candidate):
    return 10 * math.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum((reference - candidate) ** 2.0))


def agreement_floor(float_logits, sqnr, count_sigmas=3.0):
    """Top-1 agreement an int8 model whose logit error is Gaussian at `sqnr` dB must reach.

    The error RMS is sigma = RMS(logits) * 10^(-sqnr/20). The gap between the two top float logits
    moves by the difference of two such errors, N(0, 2 sigma^2), so an image with margin m keeps its
    top-1 with probability Phi(m / (sqrt(2) sigma)). The floor is the expected agreement over the
    images minus `count_sigmas` binomial standard deviations.
    """
    sigma = math.sqrt(np.mean(float_logits.astype(np.float64) ** 2)) * 10 ** (-sqnr / 20)
    top = np.sort(float_logits, axis=1)
    margins = top[:, -1] - top[:, -2]
    keep = 0.5 * (1 + np.vectorize(math.erf)(margins / (2 * sigma)))
    expected = float(keep.mean())
    return expected - count_sigmas * math.sqrt(expected * (1 - expected) / len(margins))


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_fp32_ms_matches_onnxruntime(mslite_backend, zoo_onnx, tmp_path, width):
    source = zoo_onnx[width]
    path = write_mslite(source, tmp_path, load_card(source), precision="fp32")
    assert path.name == f"{load_card(source).stem}.fp32.ms"
    card = load_card(path)
    assert (card.format, card.precision, card.input_layout, card.input_dtype) == ("ms", "fp32", "NCHW", "float32")
    x = images(6, ZOO_SIZE, seed=int(width * 100))
    reference = onnxruntime(source, x)
    assert np.abs(reference).max() > 1.0  # logits of a few units: the tolerance is relative to real numbers
    with load_predictor(path, num_threads=2) as predictor:
        assert predictor.input_spec.shape == (1, 3, ZOO_SIZE, ZOO_SIZE)
        logits = predictor.run(x)
    assert logits.shape == reference.shape
    print(f"width {width}: max |fp32 .ms - ONNX Runtime| = {np.abs(logits - reference).max():.2e} "
          f"(logits up to {np.abs(reference).max():.1f})")
    np.testing.assert_allclose(logits, reference, atol=FP32_ATOL, rtol=0)


@pytest.mark.slow
def test_mslite_ptq_max_min_gives_a_working_int8_model(mslite_backend, digits_model, tmp_path):
    model = digits_model
    fp32 = write_mslite(model.onnx, tmp_path, model.card, precision="fp32")
    int8 = write_mslite(model.onnx, tmp_path, model.card, precision="int8", quantizer="mslite", method="max_min",
                        calib_images=model.calib_images)
    card = load_card(int8)
    assert card.precision == "int8" and card.extra["quantizer"] == "mslite"
    assert card.extra["method"] == "MAX_MIN" and card.extra["calibration_images"] == len(model.calib_images)
    # int8 weights are a quarter of the float ones; per-channel parameters and int32 biases add ~15%
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    float_logits = onnxruntime(model.onnx, model.val_images)
    with load_predictor(int8) as predictor:
        int8_logits = predictor.run(model.val_images)
    sqnr = sqnr_db(float_logits, int8_logits)
    agreement = float(np.mean(int8_logits.argmax(1) == float_logits.argmax(1)))
    floor = agreement_floor(float_logits, MIN_SQNR_DB)
    print(f"MAX_MIN int8 vs float on {len(float_logits)} digits: SQNR {sqnr:.1f} dB, "
          f"top-1 agreement {agreement:.3f} (floor {floor:.3f})")
    assert sqnr >= MIN_SQNR_DB
    assert agreement >= floor


@pytest.mark.slow
def test_float_tflite_converts_to_ms_with_nhwc_input(mslite_backend, zoo_onnx, tmp_path):
    source = zoo_onnx[0.25]
    tflite = tmp_path / "float.tflite"
    tflite.write_bytes(write_tflite(lower_for_tflite(import_onnx(source, load_card(source)))))
    path = convert_to_ms(tflite, tmp_path / "from_tflite.ms", fmk="tflite", input_format=None, backend=mslite_backend)
    x = images(4, ZOO_SIZE, seed=3)
    with mslite_backend.open(path) as session:
        assert session.inputs[0].shape == (1, ZOO_SIZE, ZOO_SIZE, 3)
        logits = session.run(x.transpose(0, 2, 3, 1).copy())
    np.testing.assert_allclose(logits, onnxruntime(source, x), atol=FP32_ATOL, rtol=0)


def test_int8_tflite_converts_to_ms_and_matches_litert_to_one_lsb(mslite_backend, tmp_path):
    """Our int8 TFLite (per-channel conv + depthwise, int8 requantization) keeps its parameters in `.ms`."""
    graph = int8_graph(size=8)
    tflite = tmp_path / "int8.tflite"
    tflite.write_bytes(write_tflite(graph))
    path = convert_to_ms(tflite, tmp_path / "int8.ms", fmk="tflite", input_format=None, backend=mslite_backend)
    x = np.random.RandomState(0).uniform(-2.5, 2.5, (16, 8, 8, 3)).astype(np.float32)
    with mslite_backend.open(path) as session:
        ms_out = session.run(x)
    litert = run_tflite(tflite.read_bytes(), x, builtin_only=True)
    lsb = graph.tensors["zq"].quant.scale[0]
    print(f"int8 .ms vs LiteRT: max {np.abs(ms_out - litert).max() / lsb:.2f} LSB, "
          f"{np.mean(np.abs(ms_out - litert) > lsb / 2):.4f} of outputs differ")
    assert np.abs(ms_out - litert).max() <= lsb + 1e-6
