"""MobileNetV1-style ONNX models built with onnx.helper: models that MindSpore did not write."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.RandomState(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        self.count += 1
        out = f"t{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}_{self.count}", **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int, group: int, bias: bool) -> str:
        w = self.rng.randn(cout, cin // group, k, k).astype(np.float32) * np.sqrt(2.0 / (k * k * cin / group))
        inputs = [x, self.const(f"w{self.count}", w)]
        if bias:
            inputs.append(self.const(f"b{self.count}", self.rng.randn(cout).astype(np.float32) * 0.1))
        return self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[k // 2] * 4, group=group)

    def bn(self, x: str, c: int) -> str:
        r = self.rng
        names = [self.const(f"{p}{self.count}", v.astype(np.float32)) for p, v in (
            ("g", r.uniform(0.5, 1.5, c)), ("be", r.randn(c) * 0.1), ("m", r.randn(c) * 0.1),
            ("v", r.uniform(0.5, 2.0, c)))]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-3)

    def relu6(self, x: str, opset: int) -> str:
        if opset >= 11:
            return self.node("Clip", [x, self.const(f"lo{self.count}", np.array(0, np.float32)),
                                      self.const(f"hi{self.count}", np.array(6, np.float32))])
        return self.node("Clip", [x], min=0.0, max=6.0)


def mobilenet_like(image_size: int = 32, width: float = 0.25, num_classes: int = 10, *, folded_bn: bool = True,
                   activation: str = "relu6", head: str = "matmul_add", pool: str = "global", softmax: bool = False,
                   blocks=((64, 1), (128, 2), (128, 1), (256, 2)), opset: int = 13, seed: int = 0) -> onnx.ModelProto:
    """A small MobileNetV1 in NCHW, as another framework would export it.

    folded_bn: Conv with bias (BN already folded) instead of Conv + BatchNormalization.
    head: "matmul_add" (Flatten + MatMul + Add) or "gemm" (Flatten + Gemm).
    pool: "global" (GlobalAveragePool) or "reduce_mean" (ReduceMean over H, W).
    """
    b = _Builder(seed)

    def act(x):
        return b.relu6(x, opset) if activation == "relu6" else b.node("Relu", [x])

    def conv_bn_act(x, cin, cout, k, stride, group):
        y = b.conv(x, cin, cout, k, stride, group, bias=folded_bn)
        return act(y if folded_bn else b.bn(y, cout))

    channels = int(32 * width)
    x = conv_bn_act("input", 3, channels, 3, 2, 1)
    for out, stride in blocks:
        out = int(out * width)
        x = conv_bn_act(x, channels, channels, 3, stride, channels)
        x = conv_bn_act(x, channels, out, 1, 1, 1)
        channels = out
    if pool == "global":
        x = b.node("GlobalAveragePool", [x])
    else:
        x = b.node("ReduceMean", [x], axes=[2, 3], keepdims=1)
    x = b.node("Flatten", [x], axis=1)
    w = b.rng.randn(channels, num_classes).astype(np.float32) * 0.1
    bias = b.rng.randn(num_classes).astype(np.float32) * 0.1
    if head == "gemm":
        x = b.node("Gemm", [x, b.const("fc_w", w.T.copy()), b.const("fc_b", bias)], transB=1)
    else:
        x = b.node("Add", [b.node("MatMul", [x, b.const("fc_w", w)]), b.const("fc_b", bias)])
    if softmax:
        x = b.node("Softmax", [x], axis=1 if opset < 13 else -1)
    graph = helper.make_graph(
        b.nodes, "mobilenet_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, image_size, image_size])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, num_classes])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_onnxruntime(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Run a batch-1 model over a batch, one image at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])
