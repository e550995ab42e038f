"""`mnv1-tk setup mslite`: idempotent, repairs interrupted and damaged caches, one-line errors.

Each test works in its own cache directory and runs the real setup (pip download from PyPI,
extraction, g++, smoke test) through the real command line.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from converters.mslite.install import LIBRARIES, Installation, default_cache, is_ready

MNV1_TK = str(Path(sys.executable).with_name("mnv1-tk"))  # the installed console script


def mnv1_tk(*args, env=None):
    return subprocess.run([MNV1_TK, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def setup_json(cache: Path, *extra, env=None) -> dict:
    result = mnv1_tk("setup", "mslite", "--cache", str(cache), "--json", *extra, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def steps(report: dict) -> list[str]:
    return [step["step"] for step in report["steps"]]


@pytest.fixture()
def extracted_cache(mslite_backend, tmp_path) -> Installation:
    """A cache holding a copy of the session's extracted libraries, but no shim and no marker."""
    install = Installation(tmp_path / "mslite")
    install.root.mkdir()
    shutil.copytree(Installation(default_cache()).dist, install.dist)
    return install


@pytest.mark.slow
def test_setup_is_idempotent_and_survives_a_kill_during_extraction(tmp_path):
    install = Installation(tmp_path / "mslite")
    # Kill the first run as soon as extraction has started: a genuinely half-extracted cache.
    process = subprocess.Popen([MNV1_TK, "setup", "mslite", "--cache", str(install.root)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(install.root.glob(".dist-*/lib/*")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "setup finished before extraction could be interrupted"
    assert not is_ready(install) and not install.dist.exists()

    first = setup_json(install.root)
    assert steps(first) == ["download wheel", "extract libraries", "build shim", "smoke test"]
    assert is_ready(install)
    assert not list(install.root.glob(".dist-*")) and not install.download_dir.exists()
    assert {p.name for p in install.lib_dir.iterdir()} == set(LIBRARIES)

    second = setup_json(install.root)
    assert steps(second) == ["check"]


@pytest.mark.slow
def test_setup_repairs_a_truncated_library(extracted_cache):
    install = extracted_cache
    setup_json(install.root)  # shim + smoke test + marker on the copied libraries
    damaged = install.lib_dir / "libmindspore_core.so"
    with open(damaged, "r+b") as handle:
        handle.truncate(damaged.stat().st_size // 2)
    assert not is_ready(install)
    report = setup_json(install.root)
    assert steps(report) == ["download wheel", "extract libraries", "build shim", "smoke test"]
    assert is_ready(install)


@pytest.mark.parametrize("state", ["fresh", "extracted"])
def test_missing_compiler_is_one_line_with_the_package_to_install(extracted_cache, state):
    if state == "fresh":
        shutil.rmtree(extracted_cache.dist)
    result = mnv1_tk("setup", "mslite", "--cache", str(extracted_cache.root), env={"CXX": "g++-not-installed"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "C++ compiler 'g++-not-installed' not found" in result.stderr
    assert "install it with `sudo apt-get install g++`" in result.stderr
    assert not extracted_cache.marker.exists() and not extracted_cache.shim.exists()
    assert not extracted_cache.download_dir.exists()  # nothing downloaded for a setup that cannot finish


def test_undownloadable_wheel_is_one_line_with_what_to_do(tmp_path):
    cache = tmp_path / "mslite"
    offline = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
               "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "1", "PIP_NO_CACHE_DIR": "1"}
    result = mnv1_tk("setup", "mslite", "--cache", str(cache), env=offline)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "cannot download the mindspore-lite 2.0.0 wheel from PyPI: " in result.stderr
    assert "mindspore-lite==2.0.0" in result.stderr  # pip's own reason names the requirement
    assert "PIP_INDEX_URL" in result.stderr and "mindspore_lite-2.0.0-cp37-cp37m-manylinux1_x86_64.whl" in result.stderr
    assert not Installation(cache).dist.exists() and not Installation(cache).marker.exists()
