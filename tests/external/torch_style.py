"""MobileNetV1 ONNX files as PyTorch's exporter (`torch.onnx.export`, TorchScript path) writes them,
built with onnx.helper because torch's Linux wheel is the multi-gigabyte CUDA build.

What the exporter writes, reproduced node for node:
- TF-style SAME padding (timm's `Conv2dSame` / `pad_same`): the input size is read at run time
  (`Shape` -> `Gather`), the padding computed with integer arithmetic, the four values collected
  (`Unsqueeze` -> `Concat`), then `symbolic_opset11._prepare_onnx_paddings`: `Shape` -> `Gather`
  (the list length), `Sub(Mul(rank, 2), len)` -> `ConstantOfShape` zeros, `Cast` + `Concat`,
  `Reshape [-1, 2]`, the flip as `Slice(step -1)`, `Transpose [1, 0]`, `Reshape [-1]`, `Cast`, and
  `Pad(x, pads, value)`; the conv after it has zero `pads`.
- `nn.ReLU` -> `Relu`; `nn.ReLU6` / `Hardtanh(0, 6)` -> `Clip(x, min, max)` with `Constant` inputs.
- BatchNorm folded into the conv (eval export) or kept as `BatchNormalization`.
- the classifier input: `torch.flatten(x, 1)` -> `Flatten`, or `x.view(x.size(0), -1)` ->
  `Shape` -> `Gather(0)` -> `Unsqueeze` -> `Concat(., [-1])` -> `Reshape`.
- `nn.Linear` -> `Gemm(transB=1)`, or `x @ w + b` -> `MatMul` + `Add`.
- `dynamic_axes={"input": {0: "batch_size"}}` -> a symbolic batch dimension.
- `Unsqueeze` axes (and `ReduceMean` axes from opset 18) move from attributes to inputs as the opset rises.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = np.iinfo(np.int64).max
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (1024, 2), (1024, 1))


class _Exporter:
    def __init__(self, opset: int, seed: int):
        self.opset = opset
        self.rng = np.random.RandomState(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"/{hint}_output_{self.count}"

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self.fresh(op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"/{op}_{self.count}", **attrs))
        return out

    def constant(self, value) -> str:
        """A `Constant` node, as the exporter writes for literals."""
        array = np.asarray(value)
        return self.node("Constant", [], value=numpy_helper.from_array(array))

    def initializer(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def unsqueeze0(self, x: str) -> str:
        if self.opset >= 13:
            return self.node("Unsqueeze", [x, self.constant(np.array([0], np.int64))])
        return self.node("Unsqueeze", [x], axes=[0])

    # ---- F.pad(x, [left, right, top, bottom]) with TF SAME padding computed from x.size() ------------
    def same_pad_amounts(self, x: str, axis: int, kernel: int, stride: int) -> tuple[str, str]:
        size = self.node("Gather", [self.node("Shape", [x]), self.constant(np.array(axis, np.int64))], axis=0)
        out = self.node("Div", [self.node("Add", [size, self.constant(np.array(stride - 1, np.int64))]),
                                self.constant(np.array(stride, np.int64))])  # ceil(size / stride)
        total = self.node("Sub", [self.node("Add", [
            self.node("Mul", [self.node("Sub", [out, self.constant(np.array(1, np.int64))]),
                              self.constant(np.array(stride, np.int64))]),
            self.constant(np.array(kernel, np.int64))]), size])
        if self.opset >= 12:  # Python's max(pad, 0); int64 Max exists from opset 12
            total = self.node("Max", [total, self.constant(np.array(0, np.int64))])
        before = self.node("Div", [total, self.constant(np.array(2, np.int64))])
        return before, self.node("Sub", [total, before])

    def pad_same(self, x: str, kernel: int, stride: int) -> str:
        top, bottom = self.same_pad_amounts(x, 2, kernel, stride)
        left, right = self.same_pad_amounts(x, 3, kernel, stride)
        pad = self.node("Concat", [self.unsqueeze0(v) for v in (left, right, top, bottom)], axis=0)
        # symbolic_opset11._prepare_onnx_paddings
        pad_len = self.node("Gather", [self.node("Shape", [pad]), self.constant(np.array([0], np.int64))], axis=0)
        extension = self.node("Sub", [self.node("Mul", [self.constant(np.array(4, np.int64)),
                                                        self.constant(np.array(2, np.int64))]), pad_len])
        zeros = self.node("ConstantOfShape", [extension], value=numpy_helper.from_array(np.array([0], np.int64)))
        paddings = self.node("Concat", [self.node("Cast", [pad], to=TensorProto.INT64), zeros], axis=0)
        paddings = self.node("Reshape", [paddings, self.constant(np.array([-1, 2], np.int64))])
        flipped = self.node("Slice", [paddings, self.constant(np.array([-1], np.int64)),
                                      self.constant(np.array([-INT64_MAX], np.int64)),
                                      self.constant(np.array([0], np.int64)), self.constant(np.array([-1], np.int64))])
        paddings = self.node("Transpose", [flipped], perm=[1, 0])
        paddings = self.node("Reshape", [paddings, self.constant(np.array([-1], np.int64))])
        paddings = self.node("Cast", [paddings], to=TensorProto.INT64)
        return self.node("Pad", [x, paddings, self.constant(np.array(0.0, np.float32))], mode="constant")

    # ---- layers -------------------------------------------------------------------------------------
    def conv_bn_act(self, x: str, name: str, cin: int, cout: int, stride: int, depthwise: bool, *,
                    same_pad: bool, folded_bn: bool, activation: str) -> str:
        k = 3 if depthwise or cin == 3 else 1
        group = cin if depthwise else 1
        fan_in = k * k * cin // group
        weight = self.rng.randn(cout, cin // group, k, k) * np.sqrt(2.0 / fan_in)
        gamma, beta = self.rng.uniform(0.6, 1.2, cout), self.rng.uniform(0.0, 0.6, cout)
        mean, var = self.rng.randn(cout) * 0.05, self.rng.uniform(0.5, 1.5, cout)
        pads = [0, 0, 0, 0]
        if k > 1 and same_pad:
            x = self.pad_same(x, k, stride)
        elif k > 1:
            pads = [1, 1, 1, 1]
        conv = dict(dilations=[1, 1], group=group, kernel_shape=[k, k], pads=pads, strides=[stride, stride])
        if folded_bn:
            scale = gamma / np.sqrt(var + 1e-5)
            inputs = [x, self.initializer(f"onnx::Conv_{self.count}w", weight * scale[:, None, None, None]),
                      self.initializer(f"onnx::Conv_{self.count}b", beta - mean * scale)]
            y = self.node("Conv", inputs, **conv)
        else:
            y = self.node("Conv", [x, self.initializer(f"{name}.0.weight", weight)], **conv)
            y = self.node("BatchNormalization", [y] + [self.initializer(f"{name}.1.{p}", v) for p, v in (
                ("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var))],
                epsilon=1e-5, momentum=0.9)
        if activation == "relu":
            return self.node("Relu", [y])
        return self.node("Clip", [y, self.constant(np.array(0.0, np.float32)),
                                  self.constant(np.array(6.0, np.float32))])


def torch_style_mobilenet(width: float = 0.25, image_size: int = 32, num_classes: int = 10, *, opset: int = 17,
                          same_pad: bool = True, folded_bn: bool = True, activation: str = "relu6",
                          flatten: str = "flatten", head: str = "gemm", pool: str = "global",
                          dynamic_batch: bool = True, blocks=BLOCKS, seed: int = 0) -> onnx.ModelProto:
    """A MobileNetV1 (the 13-block table of the paper, or `blocks`) as torch.onnx.export writes it.

    flatten: "flatten" (torch.flatten) or "view" (x.view(x.size(0), -1)); head: "gemm" or "matmul_add";
    pool: "global" (AdaptiveAvgPool2d(1)) or "mean" (x.mean((2, 3), keepdim=True)).
    """
    e = _Exporter(opset, seed)
    layer = dict(same_pad=same_pad, folded_bn=folded_bn, activation=activation)
    channels = int(32 * width)
    x = e.conv_bn_act("input", "features.0", 3, channels, 2, False, **layer)
    for index, (out, stride) in enumerate(blocks, start=1):
        out = int(out * width)
        x = e.conv_bn_act(x, f"features.{index}.dw", channels, channels, stride, True, **layer)
        x = e.conv_bn_act(x, f"features.{index}.pw", channels, out, 1, False, **layer)
        channels = out
    if pool == "global":
        x = e.node("GlobalAveragePool", [x])
    elif opset >= 18:
        x = e.node("ReduceMean", [x, e.constant(np.array([2, 3], np.int64))], keepdims=1)
    else:
        x = e.node("ReduceMean", [x], axes=[2, 3], keepdims=1)
    if flatten == "flatten":
        x = e.node("Flatten", [x], axis=1)
    else:
        batch = e.node("Gather", [e.node("Shape", [x]), e.constant(np.array(0, np.int64))], axis=0)
        shape = e.node("Concat", [e.unsqueeze0(batch), e.constant(np.array([-1], np.int64))], axis=0)
        x = e.node("Reshape", [x, shape])
    weight = e.rng.randn(num_classes, channels) * np.sqrt(1.0 / channels)
    bias = e.rng.randn(num_classes) * 0.1
    if head == "gemm":
        x = e.node("Gemm", [x, e.initializer("classifier.weight", weight), e.initializer("classifier.bias", bias)],
                   alpha=1.0, beta=1.0, transB=1)
    else:
        x = e.node("Add", [e.node("MatMul", [x, e.initializer("onnx::MatMul_fc", weight.T.copy())]),
                           e.initializer("classifier.bias", bias)])
    e.nodes.append(helper.make_node("Identity", [x], ["output"], name="/Identity_output"))
    batch_dim = "batch_size" if dynamic_batch else 1
    graph = helper.make_graph(
        e.nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch_dim, 3, image_size, image_size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch_dim, num_classes])], e.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch",
                              producer_version="2.5.0")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
