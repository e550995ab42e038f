"""ctypes bindings for the shim (`shim/mnv1tk_mslite.cc`). Used only inside the worker process.

Imports nothing but the standard library and NumPy: MindSpore must never be loaded next to these
libraries (both ship `libmindspore_core.so`).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# mindspore::DataType -> NumPy dtype name
DTYPES = {43: "float32", 42: "float16", 32: "int8", 37: "uint8", 34: "int32", 35: "int64", 30: "bool"}
# mindspore::Format
FORMATS = {-1: "DEFAULT", 0: "NCHW", 1: "NHWC"}
FORMAT_CODES = {"NCHW": 0, "NHWC": 1}
# mindspore::converter::FmkType
FMK_CODES = {"tf": 0, "caffe": 1, "onnx": 2, "mindir": 3, "tflite": 4}
# mindspore::ModelType
MODEL_TYPES = {".ms": 4, ".mindir": 0}
MAX_DIMS = 8


class ShimError(Exception):
    """A call into MindSpore Lite returned an error (the message comes from its Status)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    format: str
    scale: float | None = None  # int8/uint8 tensors: real = scale * (q - zero_point)
    zero_point: int | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "format": self.format,
                "scale": self.scale, "zero_point": self.zero_point}

    def dequantize(self, array: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return array
        return ((array.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).astype(np.float32)


class Shim:
    """The loaded shim library."""

    def __init__(self, path: str | Path):
        lib = ctypes.CDLL(str(path))
        c_int, c_char_p, c_void_p, c_u64 = ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64
        lib.mnv1_last_error.restype = c_char_p
        lib.mnv1_model_open.argtypes = [c_char_p, c_int, c_int]
        lib.mnv1_model_open.restype = c_void_p
        lib.mnv1_model_close.argtypes = [c_void_p]
        lib.mnv1_model_count.argtypes = [c_void_p, c_int]
        lib.mnv1_model_tensor_info.argtypes = [c_void_p, c_int, c_int, ctypes.POINTER(ctypes.c_int64), c_int,
                                               ctypes.POINTER(c_int), ctypes.POINTER(c_int), c_char_p, c_int]
        lib.mnv1_model_tensor_quant.argtypes = [c_void_p, c_int, c_int, ctypes.POINTER(ctypes.c_double),
                                                ctypes.POINTER(c_int)]
        lib.mnv1_model_predict.argtypes = [c_void_p, ctypes.POINTER(c_void_p), ctypes.POINTER(c_u64), c_int]
        lib.mnv1_model_read_output.argtypes = [c_void_p, c_int, c_void_p, c_u64]
        self.has_converter = hasattr(lib, "mnv1_convert")
        if self.has_converter:
            lib.mnv1_convert.argtypes = [c_int, c_char_p, c_char_p, c_char_p, c_int]
        self.lib = lib

    def check(self, code: int) -> None:
        if code != 0:
            raise ShimError(self.lib.mnv1_last_error().decode(errors="replace"))

    def convert(self, fmk: str, model: str, output_prefix: str, config: str | None, input_format: str | None) -> None:
        """Writes `output_prefix + ".ms"`."""
        if not self.has_converter:
            raise ShimError("this shim was built without the converter")
        self.check(self.lib.mnv1_convert(FMK_CODES[fmk], model.encode(), output_prefix.encode(),
                                         (config or "").encode(), FORMAT_CODES.get(input_format, -1)))

    def open(self, path: str, num_threads: int) -> "LoadedModel":
        model_type = MODEL_TYPES.get(Path(path).suffix.lower())
        if model_type is None:
            raise ShimError(f"{path}: MindSpore Lite runs .ms files")
        handle = self.lib.mnv1_model_open(path.encode(), model_type, num_threads)
        if not handle:
            raise ShimError(self.lib.mnv1_last_error().decode(errors="replace"))
        return LoadedModel(self, handle)


class LoadedModel:
    """A built model; `predict` takes and returns NumPy arrays in the model's own layout and dtype."""

    def __init__(self, shim: Shim, handle: int):
        self.shim, self.handle = shim, ctypes.c_void_p(handle)
        self.inputs = self._infos(is_output=0)
        self.outputs = self._infos(is_output=1)

    def _infos(self, is_output: int) -> list[TensorInfo]:
        lib = self.shim.lib
        infos = []
        for index in range(lib.mnv1_model_count(self.handle, is_output)):
            shape = (ctypes.c_int64 * MAX_DIMS)()
            dtype, layout = ctypes.c_int(), ctypes.c_int()
            name = ctypes.create_string_buffer(512)
            ndims = lib.mnv1_model_tensor_info(self.handle, is_output, index, shape, MAX_DIMS, ctypes.byref(dtype),
                                               ctypes.byref(layout), name, len(name))
            if ndims < 0:
                self.shim.check(ndims)
            kind = DTYPES.get(dtype.value, str(dtype.value))
            scale, zero_point = ctypes.c_double(), ctypes.c_int()
            quantized = kind in ("int8", "uint8") and lib.mnv1_model_tensor_quant(
                self.handle, is_output, index, ctypes.byref(scale), ctypes.byref(zero_point)) > 0
            infos.append(TensorInfo(name.value.decode(), tuple(shape[:ndims]), kind,
                                    FORMATS.get(layout.value, str(layout.value)),
                                    scale.value if quantized else None, zero_point.value if quantized else None))
        return infos

    def predict(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if len(arrays) != len(self.inputs):
            raise ShimError(f"model takes {len(self.inputs)} inputs, got {len(arrays)}")
        buffers = []
        for array, info in zip(arrays, self.inputs):
            if array.dtype.name != info.dtype or tuple(array.shape) != info.shape:
                raise ShimError(f"input {info.name} takes {info.dtype}{list(info.shape)}, "
                                f"got {array.dtype.name}{list(array.shape)}")
            buffers.append(np.ascontiguousarray(array))
        pointers = (ctypes.c_void_p * len(buffers))(*[b.ctypes.data for b in buffers])
        sizes = (ctypes.c_uint64 * len(buffers))(*[b.nbytes for b in buffers])
        self.shim.check(self.shim.lib.mnv1_model_predict(self.handle, pointers, sizes, len(buffers)))
        self.outputs = self._infos(is_output=1)  # shapes are final after a run
        results = []
        for index, info in enumerate(self.outputs):
            out = np.empty(info.shape, dtype=info.dtype)
            self.shim.check(self.shim.lib.mnv1_model_read_output(self.handle, index, out.ctypes.data, out.nbytes))
            results.append(out)
        return results

    def close(self) -> None:
        if self.handle:
            self.shim.lib.mnv1_model_close(self.handle)
            self.handle = ctypes.c_void_p()
