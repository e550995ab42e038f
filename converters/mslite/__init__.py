"""MindSpore Lite 2.0 backend: `.ms` models through the real converter and runtime.

The libraries run only in a child process (`worker.py`): MindSpore 2.10 and MindSpore Lite both
ship `libmindspore_core.so`. Nothing here imports MindSpore.

The modules read top-down, each importing only those above it: `install` (fetch and extract the
libraries, build the shim; `converters.native` holds the steps every native backend shares) ->
`bindings` / `worker` / `client` (the shim in a child process) -> `backends` -> `smoke` ->
`provision` (setup_mslite, ensure_mslite) -> `convert` (write_mslite).
"""

from converters.mslite.config import METHODS, full_quant_config, render_config, write_calibration_bins
from converters.mslite.convert import convert_to_ms, verify_ms, write_mslite
from converters.mslite.install import default_cache
from converters.mslite.provision import ensure_mslite, setup_mslite

__all__ = ["METHODS", "convert_to_ms", "default_cache", "ensure_mslite", "full_quant_config", "render_config",
           "setup_mslite", "verify_ms", "write_calibration_bins", "write_mslite"]
