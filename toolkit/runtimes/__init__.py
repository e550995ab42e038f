"""Runtime adapters behind one `Predictor` interface, chosen by file suffix."""

from toolkit.runtimes.base import InputSpec, Predictor, load_predictor, register_runtime, runtime_for

# Built-in runtimes register themselves when imported; each imports its engine lazily.
from toolkit.runtimes import mindspore_rt  # noqa: E402,F401  (.ckpt, .mindir)
from toolkit.runtimes import onnxrt  # noqa: E402,F401  (.onnx)
from toolkit.runtimes import litert  # noqa: E402,F401  (.tflite)
from toolkit.runtimes import mslite  # noqa: E402,F401  (.ms)
from toolkit.runtimes import qnn  # noqa: E402,F401  (compiled EPContext .onnx, after onnxrt: asked first)

__all__ = ["InputSpec", "Predictor", "load_predictor", "register_runtime", "runtime_for"]
