"""`setup_mslite` and `ensure_mslite`: a MindSpore Lite backend made ready, from the wheel or an official package.

This module sits on top of the others: it installs (`install`), opens the backend (`backends`) and
smoke-tests it (`smoke`); `convert` and the `.ms` runtime call `ensure_mslite` from here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

from converters import native
from converters.mslite.backends import OfficialBackend, WheelBackend
from converters.mslite.install import (
    ENV_DIR, ENV_HOME, SHIM_NAME, SHIM_SOURCE, VERSION, WHEEL, Installation, build_shim, default_cache,
    extract_libraries, find_compiler, is_ready, official_shim_command, shim_command, shim_fingerprint,
    LINKED_LIBRARIES,
)
from converters.mslite.smoke import smoke_test
from toolkit.fsutil import write_json

LABEL = "MindSpore Lite"


def setup_wheel(install: Installation, *, force: bool = False, quiet: bool = False) -> native.SetupReport:
    """Make `install` ready (idempotent); each step is verified before the next starts."""
    report = native.SetupReport(install.root, "wheel")
    steps = native.Steps(report, LABEL, quiet)
    start = time.perf_counter()
    with native.locked(install.root):
        fingerprint = shim_fingerprint()
        if not force and is_ready(install, fingerprint):
            steps.already_done()
        else:
            install.marker.unlink(missing_ok=True)
            compiler = find_compiler()  # before a download that would be of no use without it
            if force or not native.is_whole(install.dist):
                steps.fetch_and_extract(WHEEL, install, extract_libraries)
            with steps.step("build shim", SHIM_SOURCE.name):
                build_shim(shim_command(compiler, install.dist, [install.lib_dir], LINKED_LIBRARIES,
                                        install.shim, with_converter=True), install.shim)
            with steps.step("smoke test") as entry:
                entry["detail"] = smoke_test(WheelBackend(install))
            write_json(install.marker, {"mindspore_lite": VERSION, "shim": fingerprint})
            shutil.rmtree(install.download_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - start
    report.cache_bytes = native.directory_size(install.root)
    return report


def setup_official(home: Path, install: Installation, *, force: bool = False, quiet: bool = False
                   ) -> native.SetupReport:
    """Check an official package at `home`, build the runtime shim against it, smoke-test converter_lite
    and benchmark. The shim lives in the cache, one per package (`official-<hash>/`)."""
    home = Path(home).expanduser().resolve()
    folder = install.root / f"official-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    backend = OfficialBackend(home, folder / SHIM_NAME)
    backend.check_layout()
    report = native.SetupReport(folder, backend.name)
    steps = native.Steps(report, LABEL, quiet)
    start = time.perf_counter()
    marker = folder / "READY.json"
    fingerprint = shim_fingerprint(str(home))
    with native.locked(folder):
        if not force and backend.shim.is_file() and native.read_marker(marker).get("shim") == fingerprint:
            steps.already_done()
        else:
            marker.unlink(missing_ok=True)
            with steps.step("build shim", f"against {home}/runtime/lib/libmindspore-lite.so"):
                build_shim(official_shim_command(backend, find_compiler()), backend.shim)
            with steps.step("smoke test") as entry:
                entry["detail"] = smoke_test(backend)
            write_json(marker, {"mindspore_lite": str(home), "shim": fingerprint})
    report.seconds = time.perf_counter() - start
    report.cache_bytes = native.directory_size(folder)
    return report


def setup_mslite(cache: str | Path | None = None, *, force: bool = False, quiet: bool = False) -> native.SetupReport:
    """`mnv1-tk setup mslite`: set up the official package in `$MSLITE_HOME` if set, else the PyPI wheel.

    cache: the cache directory (default `default_cache()`). Safe to run again: a finished setup is
    only checked, an interrupted one is repaired.
    """
    install = Installation(Path(cache).expanduser() if cache else default_cache())
    if os.environ.get(ENV_HOME):
        return setup_official(Path(os.environ[ENV_HOME]), install, force=force, quiet=quiet)
    return setup_wheel(install, force=force, quiet=quiet)


def ensure_mslite(*, quiet: bool = False):
    """The ready MindSpore Lite backend for `convert` and `validate`; runs the setup on first use."""
    install = Installation(default_cache())
    if os.environ.get(ENV_HOME):
        report = setup_official(Path(os.environ[ENV_HOME]), install, quiet=True)
        return OfficialBackend(Path(os.environ[ENV_HOME]).expanduser().resolve(), report.root / SHIM_NAME)
    if not is_ready(install):
        from rich.console import Console

        Console(stderr=True, quiet=quiet).print(
            f"MindSpore Lite is not set up yet: running `mnv1-tk setup mslite` once "
            f"(downloads the {VERSION} wheel, ~170 MB; keeps ~100 MB in {install.root})")
        setup_wheel(install, quiet=quiet)
    return WheelBackend(install)


def setup_command(cache: str | Path | None, *, force: bool = False, as_json: bool = False) -> native.SetupReport:
    """`mnv1-tk setup mslite`: run the setup, then print its report as a table or as JSON."""
    report = setup_mslite(cache, force=force, quiet=as_json)
    native.print_report(report, f"MindSpore Lite ({report.backend}) in {report.root}", as_json, cache, default_cache(),
                        ENV_DIR)
    return report
