"""LiteRT next to the integer reference executor: run every tensor, compare bit for bit."""

import numpy as np

from converters.tflite import write_tflite
from quantize import reference

RESOLVERS = {"builtin": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "reference": "BUILTIN_REF", "xnnpack": "AUTO"}


def litert_interpreter(model: bytes, resolver: str):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=getattr(OpResolverType, RESOLVERS[resolver]))
    interpreter.allocate_tensors()
    return interpreter


def run_litert(model: bytes, resolver: str, x: np.ndarray, tensors: list[str]) -> dict[str, np.ndarray]:
    """Every named tensor, one image per invoke."""
    interpreter = litert_interpreter(model, resolver)
    index = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    out: dict[str, list] = {t: [] for t in tensors}
    for image in x:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        for t in tensors:
            out[t].append(interpreter.get_tensor(index[t]).copy())
    return {t: np.concatenate(v) for t, v in out.items()}


def check_exact(qgraph, x, kernels):
    """Every tensor of the int8 graph equal in LiteRT and in the reference executor."""
    tensors = [n.outputs[0] for n in qgraph.nodes]
    ours: dict[str, np.ndarray] = {}
    reference.run(qgraph, x, kernels, on_tensor=ours.__setitem__)
    theirs = run_litert(write_tflite(qgraph), kernels, x, tensors)
    for name in tensors:
        assert theirs[name].dtype == ours[name].dtype, name
        mismatched = int(np.sum(theirs[name] != ours[name]))
        assert mismatched == 0, f"{name}: {mismatched} of {ours[name].size} values differ ({kernels} kernels)"
