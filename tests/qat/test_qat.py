"""Quantization-aware fine-tuning: `train --qat --from CKPT`, and `convert --quant int8` on its checkpoint.

One short QAT run of the session's trained digits model (a few steps: these tests check that the
int8 file computes what training saw, not how much QAT gains; bench/qat.py measures that).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.cli import assert_one_line_error, invoke

EVAL_IMAGES = 64


@pytest.fixture(scope="module")
def qat_run(trained_digits, tmp_path_factory):
    from rich.console import Console

    from toolkit.train import load_config, train

    run_dir = tmp_path_factory.mktemp("qat_run")
    config = load_config("mobilenet_v1_025_digits", {
        "qat": True, "ckpt_path": str(trained_digits.checkpoint), "epoch_size": 1, "num_samples": 96, "qat_lr": 0.005,
        "qat_calib_images": 64, "val_while_train": False, "ckpt_save_dir": str(run_dir)})
    return train(config, console=Console(stderr=True, quiet=True))


def _litert_builtin(path: Path, images: np.ndarray, tensors: list[str]) -> dict[str, np.ndarray]:
    """The named tensors in LiteRT's optimized built-in kernels (what ships, no delegate), one image per invoke."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    out = {t: [] for t in tensors}
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for t in tensors:
            out[t].append(interpreter.get_tensor(index[t]).copy())
    return {t: np.concatenate(v) for t, v in out.items()}


def test_qat_checkpoint_converts_to_what_training_computed(qat_run, tmp_path):
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from quantize import Recipe, reference
    from quantize.qat import qat_ranges, quantize_qat
    from quantize.qat.network import load_qat_network
    from quantize.quantizer import to_nhwc
    from toolkit.card import load_card
    from toolkit.convert import ConvertOptions, convert, eval_set
    from toolkit.models.checkpoint import read_checkpoint

    checkpoint = qat_run.last_checkpoint
    card = load_card(checkpoint)
    network = load_qat_network(checkpoint)
    assert qat_ranges(card) == network.activation_params()  # the card carries the learnt ranges
    assert len(qat_ranges(card)) == 1 + 27 + 1  # input, 27 conv layers, logits
    assert "qat.logits.hi" in read_checkpoint(checkpoint)  # and so does the checkpoint (for --resume)

    # convert --quant int8 takes them: no calibration images needed.
    results = convert(checkpoint, ConvertOptions(quant="int8", out_dir=tmp_path))
    tflite = results[0].path
    assert results[0].precision == "int8" and results[0].sqnr_db > 20
    assert load_card(tflite).extra["quantization"]["qat"] is True
    assert _xnnpack_partitions(tflite) == 1  # the global pool as MEAN, as PTQ writes it

    images, _ = eval_set(card, None, EVAL_IMAGES)
    onnx = next(tmp_path.glob("*.onnx"))  # convert's export of the checkpoint
    qgraph = quantize_qat(lower_for_tflite(import_onnx(onnx, load_card(onnx))), qat_ranges(card),
                          Recipe.load("default")).graph
    classifier = next(n for n in qgraph.nodes if n.op == "fully_connected")
    tensors = [classifier.inputs[0], classifier.outputs[0], qgraph.outputs[0]]
    ours = reference.run(qgraph, to_nhwc(images), "builtin", fetch=tensors)
    theirs = _litert_builtin(tflite, to_nhwc(images), tensors)
    # The written file in LiteRT: bit for bit the reference executor, the classifier included.
    np.testing.assert_array_equal(theirs[classifier.inputs[0]], ours[classifier.inputs[0]])
    np.testing.assert_array_equal(theirs[classifier.outputs[0]], ours[classifier.outputs[0]])
    ours = ours[qgraph.outputs[0]]
    # Training's fake-quant forward pass, layer by layer from the same int8 input: the reference's int8 output
    # but for rare values 1 off (a tie that the float32 convolution decides the other way: 0.02% of one layer's
    # values on this model; it requantizes in float64, as the converter computes its multipliers).
    layers = [n for n in qgraph.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    expected = reference.run(qgraph, to_nhwc(images), "builtin", fetch=[n.outputs[0] for n in layers])
    x, scale, zero_point = network.input_quant(ms.Tensor(images))
    for layer, node in zip(network.layers, layers, strict=True):
        x, scale, zero_point = layer(x, scale)
        int8 = expected[node.outputs[0]].transpose(0, 3, 1, 2)
        off = np.abs((x + zero_point).asnumpy() - int8)
        assert off.max() <= 1 and np.mean(off > 0) <= 1e-3, (node.name, off.max(), np.mean(off > 0))
        x = ms.Tensor(int8 - zero_point.asnumpy())  # the next layer starts from the reference's values again
    # End to end, a value 1 off is carried on by the later layers: the logits stay within 1 LSB of the file's
    # (14 of 640 logits 1 LSB off on this model; the earlier float32 requantization put some 2 LSB off).
    logits_q = qgraph.tensors[classifier.outputs[0]].quant
    trained = network(ms.Tensor(images)).asnumpy()
    lsb = np.abs(trained - ours) / float(logits_q.scale[0])
    assert lsb.max() <= 1.0 + 1e-3, f"{lsb.max():.2f} LSB"
    assert np.mean(lsb > 0.5) <= 0.05, f"{np.sum(lsb > 0.5)} of {lsb.size} logits 1 LSB off"
    assert np.mean(trained.argmax(1) == ours.argmax(1)) >= 0.98


def test_qat_starts_where_our_ptq_ends(trained_digits):
    """Ranges, AdaRound's rounding and bias-corrected biases from our default PTQ: before any step, the QAT
    network's int8 weights are AdaRound's and it computes the PTQ int8 model's logits, not those of the model
    with nearest-rounded weights or without bias correction."""
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from quantize import Quantizer, Recipe, reference
    from quantize.qat.network import MINDSPORE_LAYOUT
    from quantize.quantizer import to_nhwc
    from toolkit.card import load_card
    from toolkit.convert import eval_set
    from toolkit.train.qat import qat_network_from_plan

    card = load_card(trained_digits.onnx)
    images, _ = eval_set(card, None, EVAL_IMAGES)
    result = Quantizer(Recipe.load("default")).quantize(lower_for_tflite(import_onnx(trained_digits.onnx, card)),
                                                        images)
    assert result.plan.round_up, "the default recipe runs AdaRound"
    ptq = reference.run(result.graph, to_nhwc(images), "builtin")[result.graph.outputs[0]]
    classifier = next(n for n in result.graph.nodes if n.op == "fully_connected")
    logits_scale = float(result.graph.tensors[classifier.outputs[0]].quant.scale[0])

    def int8_weights(network) -> np.ndarray:
        from quantize.qat.fake_quant import quantize_weight, weight_scale

        weights = [layer.folded()[0] for layer in network.layers]
        return np.concatenate([quantize_weight(w, weight_scale(w, True)).asnumpy().ravel() for w in weights])

    def qat_logits(plan):
        network = qat_network_from_plan(trained_digits.checkpoint, card, result.float_graph, plan,
                                        result.act_equalization)
        return network(ms.Tensor(images)).asnumpy(), int8_weights(network)

    started, started_weights = qat_logits(result.plan)
    nearest, nearest_weights = qat_logits(dataclasses.replace(result.plan, round_up={}))
    uncorrected, _ = qat_logits(dataclasses.replace(result.plan, biases={}))
    ptq_weights = np.concatenate([
        result.graph.const(node.inputs[1]).transpose(MINDSPORE_LAYOUT[node.op]).ravel()
        for node in result.graph.nodes if node.op in ("conv2d", "depthwise_conv2d")])
    assert np.mean(nearest_weights != ptq_weights) > 0.01  # AdaRound moved this share away from nearest
    assert np.mean(started_weights != ptq_weights) < 1e-4, np.mean(started_weights != ptq_weights)

    def moved_lsb(logits) -> np.ndarray:
        return np.abs(logits - ptq) / logits_scale

    # A rare bias or input rounding that lands on the other side of a tie (the float paths differ) moves a
    # logit by an LSB or two; nearest-rounded weights or no correction shift move a large share.
    lsb = moved_lsb(started)
    assert np.mean(lsb > 0.5) < 0.02 and lsb.max() <= 2.0 + 1e-3, (np.mean(lsb > 0.5), lsb.max())
    assert np.mean(moved_lsb(nearest) > 0.5) > 0.2, np.mean(moved_lsb(nearest) > 0.5)
    assert np.mean(moved_lsb(uncorrected) > 0.5) > 0.2, np.mean(moved_lsb(uncorrected) > 0.5)


def test_equalization_stays_outside_the_trained_parameters(trained_digits):
    """The PTQ's activation equalization enters the QAT network as constants: the trained parameters and their
    gradients are the float model's (folded in, a channel scale s would scale a parameter's gradient by s or
    1 / s), the quantized tensors are the equalized graph's, and baking the constants into the parameters (what a
    checkpoint saves) keeps the int8 logits."""
    import mindspore as ms

    from converters.onnx_import import import_onnx
    from converters.passes import lower_for_tflite
    from quantize import Quantizer, Recipe
    from quantize.qat.network import QATMobileNetV1, start_from_plan
    from toolkit.card import load_card
    from toolkit.convert import eval_set
    from toolkit.models import create_model
    from toolkit.models.checkpoint import load_weights

    card = load_card(trained_digits.onnx)
    images, _ = eval_set(card, None, 16)
    result = Quantizer(Recipe.load("default").replace(adaround=False, bias_correction=False)).quantize(
        lower_for_tflite(import_onnx(trained_digits.onnx, card)), images)
    scales = result.act_equalization.scales
    assert len(scales) > 20 and max(s.max() for s in scales.values()) > 4

    def network():
        float_model = create_model(card.model, num_classes=card.num_classes, activation=card.activation)
        load_weights(float_model, str(trained_digits.checkpoint), head="strict")
        return QATMobileNetV1(float_model)

    def gradients(net) -> dict[str, np.ndarray]:
        weights = [p for p in net.trainable_params() if not p.name.startswith("qat.")]
        grads = ms.grad(lambda x: (net.float_forward(x)[-1] ** 2).mean(), grad_position=None, weights=weights)(
            ms.Tensor(images))
        return {p.name: g.asnumpy() for p, g in zip(weights, grads)}

    plain, equalized = network(), network()
    start_from_plan(equalized, result.float_graph, result.plan, result.act_equalization)  # ranges too
    x = ms.Tensor(images)
    plain_tensors, equalized_tensors = plain.float_forward(x), equalized.float_forward(x)
    first = next(i for i, node in enumerate(n for n in result.float_graph.nodes
                                               if n.op in ("conv2d", "depthwise_conv2d")) if node.name in scales)
    assert not np.allclose(plain_tensors[first + 1].asnumpy(), equalized_tensors[first + 1].asnumpy(), rtol=0.1)
    np.testing.assert_allclose(equalized_tensors[-1].asnumpy(), plain_tensors[-1].asnumpy(), rtol=1e-4, atol=1e-4)
    plain_grads, equalized_grads = gradients(plain), gradients(equalized)
    for name, grad in plain_grads.items():
        np.testing.assert_allclose(equalized_grads[name], grad, rtol=1e-3, atol=1e-6, err_msg=name)

    quantized = equalized(x).asnumpy()
    equalized.bake_equalization()
    assert all(np.all(layer.out_eq.asnumpy() == 1) and np.all(layer.in_eq.asnumpy() == 1) for layer in equalized.layers)
    baked_grads = gradients(equalized)
    assert any(not np.allclose(baked_grads[n], g, rtol=0.1, atol=1e-6) for n, g in plain_grads.items())
    logits_scale = float(equalized.classifier.out_quant.quant_params()[0].asnumpy()[0])
    assert np.mean(np.abs(equalized(x).asnumpy() - quantized) > 0.5 * logits_scale) < 0.02


def test_qat_resumes_with_its_equalization_constants(qat_run, trained_digits, tmp_path):
    """`--resume` continues the fine-tuning with the equalization constants it trained with (kept apart from the
    parameters in the training state, baked into the saved weights); a state saved before they existed (the
    scales already in its parameters) resumes with constants of 1, not scaled twice."""
    import json
    import shutil

    from rich.console import Console

    from quantize.qat.distill import DistillationNet
    from quantize.qat.network import QATMobileNetV1
    from toolkit.models import create_model
    from toolkit.models.checkpoint import read_checkpoint
    from toolkit.train import load_config, train
    from toolkit.train.checkpoints import TRAIN_PREFIX
    from toolkit.train.qat import with_equalization_constants
    from toolkit.train.trainer import _copy_weights

    network = QATMobileNetV1(create_model("mobilenet_v1_025", num_classes=10, activation="relu6"))
    layer = network.layers[1]
    committed = read_checkpoint(next(qat_run.directory.glob("optim_*.ckpt")))
    scales = committed[TRAIN_PREFIX + layer.out_eq.name].asnumpy()
    assert scales.max() > 1  # the PTQ's scales, apart from the trained parameters

    run_dir = tmp_path / "run"
    shutil.copytree(qat_run.directory, run_dir)
    config = load_config("mobilenet_v1_025_digits", {
        "qat": True, "ckpt_path": str(trained_digits.checkpoint), "epoch_size": 2, "num_samples": 96,
        "qat_lr": 0.005, "qat_calib_images": 64, "val_while_train": False, "ckpt_save_dir": str(run_dir),
        "resume_opt": True})
    result = train(config, console=Console(stderr=True, quiet=True))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["event"] == "resume"] == [1]
    final = read_checkpoint(next(run_dir.glob("optim_*.ckpt")))
    np.testing.assert_array_equal(final[TRAIN_PREFIX + layer.out_eq.name].asnumpy(), scales)
    saved = read_checkpoint(result.last_checkpoint)
    assert np.all(saved[layer.out_eq.name].asnumpy() == 1)
    np.testing.assert_allclose(saved[layer.bn.gamma.name].asnumpy(),
                               final[TRAIN_PREFIX + layer.bn.gamma.name].asnumpy() * scales, rtol=1e-6)

    # A legacy state (no constants, the student's nor the teacher's) loads into the network training resumes.
    legacy = {name[len(TRAIN_PREFIX):]: value.asnumpy() for name, value in final.items()
              if name.startswith(TRAIN_PREFIX) and not name.endswith((".out_eq", ".in_eq"))}
    resumed = DistillationNet(network, QATMobileNetV1(create_model("mobilenet_v1_025", num_classes=10,
                                                                   activation="relu6"), fake_quant=False))
    _copy_weights(with_equalization_constants(legacy, resumed), resumed)
    constants = [p for p in resumed.get_parameters() if p.name.endswith((".out_eq", ".in_eq"))]
    assert len(constants) == 4 * 27 and all(np.all(p.asnumpy() == 1) for p in constants)
    np.testing.assert_array_equal(layer.bn.gamma.asnumpy(), legacy[layer.bn.gamma.name])


def test_qat_needs_a_checkpoint(tmp_path):
    result = invoke("train", "-c", "mobilenet_v1_025_digits", "--qat", "--out", tmp_path / "run")
    assert_one_line_error(result, "--qat", "--from CKPT")


def test_qat_checkpoint_refuses_another_classifier_precision(qat_run, tmp_path):
    """A QAT checkpoint converts in the format it trained in: its int8 classifier has no float twin to write."""
    out = tmp_path / "out"
    result = invoke("convert", qat_run.last_checkpoint, "--quant", "int8", "--io", "float", "--classifier", "float",
                    "--out", out)
    assert_one_line_error(result, "--classifier float", "trained in int8", "drop --classifier")
    assert not out.exists()  # checked before the export writes anything


def test_qat_clips_the_gradient_norm_at_qat_clip_value(qat_run, trained_digits):
    from toolkit.train import load_config
    from toolkit.train.qat import with_source_model

    saved = load_config(qat_run.directory / "config.yaml")  # the resolved config the run wrote
    assert saved.optimizer.clip_grad and saved.optimizer.clip_value == saved.qat.clip_value == 1.0
    assert qat_run.history[0]["max_grad_norm"] > 0 and "clipped_steps" in qat_run.history[0]
    unclipped = with_source_model(load_config("mobilenet_v1_025_digits", {
        "qat": True, "ckpt_path": str(trained_digits.checkpoint)}, ["qat_clip_value=null"]))
    assert not unclipped.optimizer.clip_grad


def test_float_classifier_qat_converts_to_what_training_computed(trained_digits, tmp_path):
    """`qat_classifier: float`: QAT trains the classifier in float on the int8 pooled features, and `convert`
    writes it so: the same int8 layers and ranges, the classifier's float weights, logits as training's."""
    import mindspore as ms
    from rich.console import Console

    from quantize.qat import qat_classifier, qat_ranges
    from quantize.qat.network import global_pool, load_qat_network
    from quantize.quantizer import to_nhwc
    from toolkit.card import load_card
    from toolkit.convert import ConvertOptions, convert, eval_set
    from toolkit.train import load_config, train

    config = load_config("mobilenet_v1_025_digits", {
        "qat": True, "ckpt_path": str(trained_digits.checkpoint), "epoch_size": 1, "num_samples": 64, "qat_lr": 0.005,
        "qat_calib_images": 64, "val_while_train": False, "ckpt_save_dir": str(tmp_path / "run"),
        "qat_classifier": "float"})
    checkpoint = train(config, console=Console(stderr=True, quiet=True)).last_checkpoint
    card = load_card(checkpoint)
    assert qat_classifier(card) == "float" and len(qat_ranges(card)) == 1 + 27  # no logits range

    result = convert(checkpoint, ConvertOptions(quant="int8", out_dir=tmp_path / "out"))[0]
    assert result.precision == "int8" and result.sqnr_db > 20
    assert len(load_card(result.path).extra["quantization"]["float_layers"]) == 1

    images, _ = eval_set(card, None, EVAL_IMAGES)
    from ai_edge_litert.interpreter import Interpreter

    assert _xnnpack_partitions(result.path) == 1
    interpreter = Interpreter(model_path=str(result.path))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    dtypes = {d["index"]: d["dtype"] for d in interpreter.get_tensor_details()}
    fc = next(op for op in ops if op["op_name"] == "FULLY_CONNECTED")
    assert dtypes[fc["inputs"][1]] == np.float32  # the classifier's weights are float
    conv = next(op for op in ops if op["op_name"] == "CONV_2D")
    assert dtypes[conv["inputs"][1]] == np.int8

    output = interpreter.get_output_details()[0]["name"]
    file_logits = _litert_builtin(result.path, to_nhwc(images), [output])[output]
    network = load_qat_network(checkpoint)
    assert network.float_classifier
    x, scale, zero_point = network.input_quant(ms.Tensor(images))
    for layer in network.layers:
        x, scale, zero_point = layer(x, scale)
    trained = network.classifier(global_pool(x, zero_point), scale).asnumpy()
    np.testing.assert_allclose(network(ms.Tensor(images)).asnumpy(), trained, rtol=1e-6, atol=1e-6)
    # Rare int8 values 1 off (see the int8 test) move a logit by one pooled LSB times a weight; the rest agree to
    # float32 rounding.
    close = np.isclose(trained, file_logits, rtol=1e-4, atol=1e-4)
    assert np.mean(close) >= 0.95, np.mean(close)
    assert np.mean(trained.argmax(1) == file_logits.argmax(1)) >= 0.98


def _xnnpack_partitions(path: Path) -> int:
    """How many XNNPACK partitions LiteRT runs the file as (as an app does: its default delegate); one only if
    it ends at the model's output."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    delegates = [op["index"] for op in interpreter._get_ops_details() if op["op_name"] == "DELEGATE"]
    if len(delegates) == 1:
        outputs = interpreter._interpreter.NodeOutputs(delegates[0])
        assert list(outputs) == list(interpreter._interpreter.OutputIndices())
    return len(delegates)
