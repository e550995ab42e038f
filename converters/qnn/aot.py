"""LiteRT's route to the same NPU: an int8 `.tflite` compiled ahead of time for a Snapdragon SoC.

`ai_edge_litert.aot.aot_compile` with the Qualcomm target puts the whole int8 graph into one
DISPATCH_OP holding a QNN context binary; LiteRT's CompiledModel runs it on the phone's NPU. Its
compiler plugin links QAIRT's x86_64 libraries, among them `libQnnLpai.so`, which neither the
`onnxruntime-qnn` wheel nor the offline install of `ai-edge-litert-sdk-qualcomm` provides, so QAIRT
must come from `$QAIRT_ROOT` (an unpacked Qualcomm AI Runtime SDK) or a working SDK package.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from converters.qnn.socs import SOC_MODELS
from toolkit.errors import BackendError, ConfigError

VENDORS = ("qualcomm",)
QAIRT_LIBRARIES = ("libQnnHtp.so", "libQnnSystem.so", "libQnnIr.so", "libQnnLpai.so", "libHtpPrepare.so")
HOW_TO_GET_QAIRT = ("set QAIRT_ROOT to an unpacked Qualcomm AI Runtime SDK (qpm.qualcomm.com), or "
                    "`pip install ai-edge-litert-sdk-qualcomm` where its install can reach Qualcomm's servers")


def parse_npu(text: str) -> str:
    """`qualcomm:SM8650` -> "SM8650"."""
    vendor, _, soc = text.partition(":")
    if vendor.lower() not in VENDORS or soc.upper() not in SOC_MODELS:
        raise ConfigError(f"unknown --npu {text}", f"use qualcomm:<SoC>, a SoC one of: {', '.join(SOC_MODELS)}")
    return soc.upper()


def find_qairt() -> Path:
    """The folder holding QAIRT's x86_64 libraries: `$QAIRT_ROOT/lib/x86_64-linux-clang`, else the SDK package's."""
    candidates = []
    if os.environ.get("QAIRT_ROOT"):
        candidates.append(Path(os.environ["QAIRT_ROOT"]).expanduser() / "lib" / "x86_64-linux-clang")
    try:
        import ai_edge_litert_sdk_qualcomm

        candidates.append(Path(ai_edge_litert_sdk_qualcomm.path_to_sdk_libs()))
    except (ImportError, AttributeError, TypeError, OSError):
        pass
    for folder in candidates:
        if all((folder / name).is_file() for name in QAIRT_LIBRARIES):
            return folder
    looked = ", ".join(str(c) for c in candidates) or "no QAIRT_ROOT and no ai-edge-litert-sdk-qualcomm"
    raise BackendError(f"LiteRT's Qualcomm compiler needs QAIRT's x86_64 libraries ({', '.join(QAIRT_LIBRARIES)}); "
                       f"looked in: {looked}", HOW_TO_GET_QAIRT)


def compile_tflite(tflite: Path, out: Path, soc: str, qairt: Path) -> Path:
    """Compile an int8 `.tflite` for `soc` with LiteRT's AOT compiler; writes `out` through a temporary folder."""
    from ai_edge_litert.aot import aot_compile
    from ai_edge_litert.aot.vendors.qualcomm import target as qualcomm

    previous = os.environ.get("LD_LIBRARY_PATH")
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(qairt), previous) if p)
    try:
        with tempfile.TemporaryDirectory(prefix=".aot-", dir=out.parent) as work:
            result = aot_compile.aot_compile(str(tflite), output_dir=work,
                                             target=[qualcomm.Target(getattr(qualcomm.SocModel, soc))])
            written = [Path(work) / name for name in os.listdir(work) if name.endswith(".tflite")]
            if len(written) != 1:
                raise BackendError(f"LiteRT's AOT compiler wrote {len(written)} models for {soc} ({result})",
                                   "run again with `mnv1-tk --debug`")
            shutil.move(str(written[0]), out)
    finally:
        if previous is None:
            os.environ.pop("LD_LIBRARY_PATH", None)
        else:
            os.environ["LD_LIBRARY_PATH"] = previous
    return out
