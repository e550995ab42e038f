"""`setup_qnn` and `ensure_qnn`: the QNN EP and HTP emulator made ready in the user cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from converters import native
from converters.qnn.install import (
    ENV_DIR, QAIRT_VERSION, VERSION, WHEEL, Installation, check_onnxruntime, default_cache, extract_libraries,
    is_ready,
)
from converters.qnn.smoke import smoke_test
from toolkit.errors import BackendError
from toolkit.fsutil import write_json

LABEL = "QNN"


def setup_qnn(cache: str | Path | None = None, *, force: bool = False, quiet: bool = False) -> native.SetupReport:
    """`mnv1-tk setup qnn`: download the onnxruntime-qnn wheel, extract its libraries, smoke-test them.

    Idempotent: a finished setup is only checked, an interrupted or damaged one repaired.
    """
    install = Installation(Path(cache).expanduser() if cache else default_cache())
    report = native.SetupReport(install.root, f"onnxruntime-qnn {VERSION} (QAIRT {QAIRT_VERSION}, x86_64 HTP emulator)")
    steps = native.Steps(report, LABEL, quiet)
    start = time.perf_counter()
    with native.locked(install.root):
        if not force and is_ready(install):
            steps.already_done()
        else:
            install.marker.unlink(missing_ok=True)
            with steps.step("check onnxruntime") as entry:
                entry["detail"] = f"onnxruntime {check_onnxruntime()}"
            if force or not native.is_whole(install.dist):
                steps.fetch_and_extract(WHEEL, install, extract_libraries)
            with steps.step("smoke test") as entry:
                entry["detail"] = smoke_test(install)
            write_json(install.marker, {"onnxruntime_qnn": VERSION, "qairt": QAIRT_VERSION})
            shutil.rmtree(install.download_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    report.cache_bytes = native.directory_size(install.root)
    return report


def ensure_qnn() -> Installation:
    """The ready installation for `convert --to qnn` and the compiled models' runtime."""
    install = Installation(default_cache())
    if not is_ready(install):
        raise BackendError(f"QNN is not set up in {install.root}",
                           f"run `mnv1-tk setup qnn` once; it downloads the onnxruntime-qnn {VERSION} wheel, ~100 MB")
    return install


def setup_command(cache: str | Path | None, *, force: bool = False, as_json: bool = False) -> native.SetupReport:
    """`mnv1-tk setup qnn`: run the setup, then print its report as a table or as JSON."""
    report = setup_qnn(cache, force=force, quiet=as_json)
    native.print_report(report, f"{report.backend} in {report.root}", as_json, cache, default_cache(), ENV_DIR)
    return report
