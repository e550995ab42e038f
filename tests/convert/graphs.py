"""Small hand-built NHWC graphs and helpers to read a written .tflite back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from converters.ir import Graph, QuantParams
from toolkit.card import ModelCard, save_card
from toolkit.models import PretrainedCfg

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def conv_graph(size: int, stride: int, pads=(1, 1, 1, 1), depthwise: bool = False, channels: int = 4,
               act: str = "none", seed: int = 0) -> Graph:
    """One 3x3 conv (or depthwise conv) with a bias, input [1, size, size, channels]."""
    rng = np.random.RandomState(seed)
    g = Graph("conv", "NHWC")
    g.add_tensor("x", (1, size, size, channels))
    shape = (1, 3, 3, channels) if depthwise else (channels, 3, 3, channels)
    w = g.add_const("w", rng.randn(*shape).astype(np.float32))
    b = g.add_const("b", rng.randn(channels).astype(np.float32))
    g.add_tensor("y", ())
    g.add_node("depthwise_conv2d" if depthwise else "conv2d", "conv", ["x", w.name, b.name], ["y"],
               strides=(stride, stride), pads=tuple(pads), act=act)
    g.inputs, g.outputs = ["x"], ["y"]
    return g.verify()


def int8_graph(size: int = 8, seed: int = 0) -> Graph:
    """float -> QUANTIZE -> int8 conv (per-channel, axis 0) -> int8 depthwise (per-channel, axis 3)
    -> DEQUANTIZE -> float, with scales a quantizer could have chosen."""
    rng = np.random.RandomState(seed)
    g = Graph("int8", "NHWC")
    s_x, s_y, s_z = 0.02, 0.05, 0.04
    g.add_tensor("x", (1, size, size, 3))
    g.add_tensor("xq", (), "int8", quant=QuantParams([s_x], [3]))
    g.add_node("quantize", "quant", ["x"], ["xq"])
    w1 = rng.randint(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    s_w1 = rng.uniform(0.002, 0.01, 6)
    b1 = rng.randint(-2000, 2000, 6).astype(np.int32)
    g.add_tensor("w1", w1.shape, "int8", w1, QuantParams(s_w1, np.zeros(6), axis=0))
    g.add_tensor("b1", b1.shape, "int32", b1, QuantParams(s_x * s_w1, np.zeros(6), axis=0))
    g.add_tensor("yq", (), "int8", quant=QuantParams([s_y], [-128]))
    g.add_node("conv2d", "conv", ["xq", "w1", "b1"], ["yq"], strides=(2, 2), pads=(1, 1, 1, 1), act="relu6")
    w2 = rng.randint(-127, 128, (1, 3, 3, 6)).astype(np.int8)
    s_w2 = rng.uniform(0.005, 0.02, 6)
    b2 = rng.randint(-500, 500, 6).astype(np.int32)
    g.add_tensor("w2", w2.shape, "int8", w2, QuantParams(s_w2, np.zeros(6), axis=3))
    g.add_tensor("b2", b2.shape, "int32", b2, QuantParams(s_y * s_w2, np.zeros(6), axis=0))
    g.add_tensor("zq", (), "int8", quant=QuantParams([s_z], [5]))
    g.add_node("depthwise_conv2d", "dw", ["yq", "w2", "b2"], ["zq"], pads=(1, 1, 1, 1))
    g.add_tensor("z", ())
    g.add_node("dequantize", "dequant", ["zq"], ["z"])
    g.inputs, g.outputs = ["x"], ["z"]
    return g.verify()


def read_model(data: bytes) -> schema.ModelT:
    return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)


def operators(data: bytes) -> list[tuple[str, int]]:
    """(builtin op name, version) of every operator, in execution order."""
    model = read_model(data)
    codes = model.operatorCodes
    return [(OP_NAMES[codes[op.opcodeIndex].builtinCode], codes[op.opcodeIndex].version)
            for op in model.subgraphs[0].operators]


def run_tflite(data: bytes, x: np.ndarray, builtin_only: bool = False) -> np.ndarray:
    """Run a batch-1 model on each image of x (NHWC)."""
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_only else OpResolverType.AUTO
    interpreter = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(results)


def make_card(image_size: int, num_classes: int = 10, **changes) -> ModelCard:
    """A model card with the zoo's preprocessing for a hand-built model."""
    cfg = PretrainedCfg()
    card = ModelCard(model="mobilenet_v1_025", width=0.25, image_size=image_size, num_classes=num_classes,
                     labels=tuple(f"class_{i}" for i in range(num_classes)), mean=cfg.mean, std=cfg.std,
                     crop_pct=cfg.crop_pct, format="tflite", input_layout="NHWC")
    return card.replace(**changes)


def save_onnx(model, directory: Path, card: ModelCard) -> Path:
    """Write `model` as `<stem>.onnx` with its ONNX-side card, as `mnv1-tk export` would."""
    import onnx

    path = Path(directory) / f"{card.stem}.onnx"
    onnx.save(model, str(path))
    save_card(card.replace(format="onnx", input_layout="NCHW", input_name=model.graph.input[0].name,
                           output_name=model.graph.output[0].name), path)
    return path
