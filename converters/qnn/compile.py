"""QDQ int8 ONNX -> per SoC, an EPContext ONNX with the compiled HTP context binary embedded.

ONNX Runtime with the QNN EP compiles the whole graph for the SoC's HTP (`soc_model`) and writes a
model whose one node, `EPContext`, carries the context binary; on the phone, ONNX Runtime with the
QNN EP loads that binary without compiling again.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from converters.qnn.install import Installation
from converters.qnn.session import htp_options, open_session
from converters.qnn.socs import SOC_MODELS
from toolkit.errors import BackendError


@dataclass(frozen=True)
class CompiledModel:
    path: Path
    soc: str
    soc_model: int
    seconds: float  # compile time on this host
    context_bytes: int  # size of the HTP context binary


def epcontext_nodes(path: Path) -> list:
    import onnx

    return [n for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "EPContext"]


def is_epcontext(path: str | Path) -> bool:
    """An ONNX model whose graph holds a compiled EPContext node."""
    try:
        return bool(epcontext_nodes(Path(path)))
    except Exception:  # not an ONNX file at all: another runtime's error to report
        return False


def compile_epcontext(qdq: bytes, out: Path, soc: str, install: Installation, *, what: str) -> CompiledModel:
    """Compile `qdq` (a QDQ ONNX with a fixed batch) for `soc`; writes `out` through a temporary file."""
    import onnx

    out = Path(out)
    partial = out.with_name(f".{out.stem}.{os.getpid()}.part.onnx")
    partial.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        open_session(qdq, htp_options(install, SOC_MODELS[soc], context_file=partial), what=f"{what} for {soc}")
        seconds = time.perf_counter() - start
        model = onnx.load(str(partial))
        others = [f"{n.name} ({n.op_type})" for n in model.graph.node if n.op_type != "EPContext"]
        contexts = [n for n in model.graph.node if n.op_type == "EPContext"]
        attrs = {a.name: a for a in contexts[0].attribute} if len(contexts) == 1 else {}
        if others or not attrs or attrs["embed_mode"].i != 1:
            raise BackendError(f"compiling {what} for {soc} left {', '.join(others) or 'no single embedded context'} "
                               "outside the HTP context", "report this model")
        context_bytes = len(attrs["ep_cache_context"].s)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return CompiledModel(out, soc, SOC_MODELS[soc], seconds, context_bytes)
