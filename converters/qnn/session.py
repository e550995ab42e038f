"""ONNX Runtime sessions on the HTP: the QNN plugin EP registered once per process, CPU fallback disabled.

The EP reports the nodes it cannot take on the native stderr only (`Unsupported nodes in QNN EP:
{ name: ..., type: ... }`), so session creation runs with fds 1 and 2 captured and those names go
into the error the user sees (the HTP library also prints a banner on stdout, which would spoil
`--json` output).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from converters.qnn.install import Installation, check_onnxruntime
from toolkit.errors import BackendError, UnsupportedOpError

EP_NAME = "QNNExecutionProvider"
UNSUPPORTED = re.compile(r"\{ name: ([^,]*), type: ([^ }]*) \}")
_registered: dict[str, str] = {}  # EP name -> library path, per process


def devices(install: Installation) -> list:
    """The QNN EP's devices, registering its library with onnxruntime on first use."""
    import onnxruntime as ort

    check_onnxruntime()
    library = str(install.provider_library)
    if _registered.get(EP_NAME) != library:
        if EP_NAME in _registered:
            ort.unregister_execution_provider_library(EP_NAME)
            del _registered[EP_NAME]
        try:
            ort.register_execution_provider_library(EP_NAME, library)
        except Exception as exc:  # onnxruntime raises its own exception classes
            raise BackendError(f"onnxruntime cannot load the QNN execution provider {library}: {_first_line(exc)}",
                               "run `mnv1-tk setup qnn --force`") from None
        _registered[EP_NAME] = library
    found = [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]
    if not found:
        raise BackendError("the QNN execution provider offers no device", "run `mnv1-tk setup qnn --force`")
    return found


def htp_options(install: Installation, soc_model: int | None = None, *, context_file: Path | None = None,
                num_threads: int | None = None):
    """Session options: the HTP backend only (no CPU fallback); with `context_file`, compile and write
    an EPContext model there with the context binary embedded."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if num_threads:
        options.intra_op_num_threads = num_threads
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if context_file is not None:
        options.add_session_config_entry("ep.context_enable", "1")
        options.add_session_config_entry("ep.context_embed_mode", "1")
        options.add_session_config_entry("ep.context_file_path", str(context_file))
    provider = {"backend_path": str(install.htp_backend)}
    if soc_model is not None:
        provider["soc_model"] = str(soc_model)
    options.add_provider_for_devices(devices(install), provider)
    return options


@contextlib.contextmanager
def native_output() -> Iterator[list[str]]:
    """Capture what native code writes to fds 1 and 2; the lines are in the yielded list afterwards."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield lines
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            lines += sink.read().decode(errors="replace").splitlines()


def open_session(model: bytes | Path, options, *, what: str):
    """An InferenceSession on the HTP. Nodes the HTP rejects raise UnsupportedOpError naming them;
    any other failure raises BackendError with onnxruntime's own first line."""
    import onnxruntime as ort

    with native_output() as log:
        try:
            return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options)
        except Exception as exc:
            failure = exc
    rejected = dict.fromkeys(f"{name} ({op})" for line in log for name, op in UNSUPPORTED.findall(line))
    if rejected:
        raise UnsupportedOpError(f"the HTP does not take {', '.join(rejected)} in {what}",
                                 "keep those layers in float (--fallback float) or convert to tflite") from None
    raise BackendError(f"the QNN HTP backend failed on {what}: {_first_line(failure)}",
                       "run again with `mnv1-tk --debug` for the full log") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
