"""Set up MindSpore Lite 2.0 for Python 3.11: fetch the wheel, extract its libraries, build the shim, smoke-test.

PyPI has MindSpore Lite only as a cp37 wheel. Its Python wrapper cannot load on 3.11, but its shared
libraries can: `shim/mnv1tk_mslite.cc` gives them a C ABI that `bindings.py` calls with ctypes, in a
child process (`worker.py`), because MindSpore 2.10 and these libraries both ship `libmindspore_core.so`.

Cache layout (`~/.cache/mnv1-tk/mslite-2.0.0`, or `--cache DIR`, or `$MNV1TK_MSLITE_DIR`):
    download/   the wheel, deleted once setup has passed
    dist/       lib/ and include/ from the wheel plus MANIFEST.json; extracted to a temporary
                sibling and renamed, so it is either whole or absent
    shim/       libmnv1tk_mslite.so, compiled to a temporary name and renamed
    READY.json  written last, after the smoke test; without it the next call repairs the cache

The libraries: the converter library holds the converter and the device-side runtime (litert), which
is what runs the `.ms` models, with int8 kernels for full-quant models; `libmindspore_core.so`
holds `Status`. Linking the shim against these two (converter first) needs none of the 2.0 wheel's
extendrt, dnnl or plugin libraries (200 MB), and keeps the converter's PTQ calibration on the
litert runtime, which it requires.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from converters import native
from toolkit.errors import BackendError

VERSION = "2.0.0"
WHEEL = native.Wheel("mindspore-lite", VERSION, f"mindspore_lite-{VERSION}-cp37-cp37m-manylinux1_x86_64.whl",
                     ("--python-version", "3.7"), "mnv1-tk setup mslite")
# Link order matters: the converter library first, so that Model/MSTensor resolve to its litert runtime.
LINKED_LIBRARIES = ("libmindspore_converter.so", "libmindspore_core.so")
LIBRARIES = LINKED_LIBRARIES + (
    "libmslite_converter_plugin.so", "libmindspore_glog.so.0",
    "libopencv_core.so.4.5", "libopencv_imgcodecs.so.4.5", "libopencv_imgproc.so.4.5",
)
WHEEL_LIB, WHEEL_INCLUDE = "mindspore_lite/lib/", "mindspore_lite/include/"
SHIM_SOURCE = Path(__file__).with_name("shim") / "mnv1tk_mslite.cc"
SHIM_NAME = "libmnv1tk_mslite.so"
CXXFLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-Wall")
ENV_DIR = "MNV1TK_MSLITE_DIR"
ENV_HOME = "MSLITE_HOME"


def default_cache() -> Path:
    """`$MNV1TK_MSLITE_DIR`, else `$XDG_CACHE_HOME/mnv1-tk/mslite-2.0.0` (`~/.cache/...`)."""
    return native.user_cache(ENV_DIR, f"mslite-{VERSION}")


class Installation(native.CacheLayout):
    """Where one MindSpore Lite setup lives."""

    @property
    def lib_dir(self) -> Path:
        return self.dist / "lib"

    @property
    def include_dir(self) -> Path:
        return self.dist / "include"

    @property
    def manifest(self) -> Path:
        return self.dist / "MANIFEST.json"

    @property
    def shim(self) -> Path:
        return self.root / "shim" / SHIM_NAME


def shim_fingerprint(extra: str = "") -> str:
    """Changes whenever the shim source or its build flags change, so an old shim gets rebuilt."""
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes())
    digest.update(" ".join(CXXFLAGS + LINKED_LIBRARIES).encode() + extra.encode())
    return digest.hexdigest()


def is_ready(install: Installation, fingerprint: str | None = None) -> bool:
    """Cheap check run before every use: marker present, same shim source, every library whole."""
    return native.read_marker(install.marker).get("shim") == (fingerprint or shim_fingerprint()) and \
        install.shim.is_file() and native.is_whole(install.dist)


# ---------------------------------------------------------------------------------------------- steps

def find_compiler() -> str:
    """The C++ compiler: `$CXX` or g++."""
    name = os.environ.get("CXX", "g++")
    path = shutil.which(name)
    if path is None:
        raise BackendError(f"C++ compiler '{name}' not found; it builds the MindSpore Lite shim",
                           "install it with `sudo apt-get install g++`, or set CXX to a C++17 compiler")
    return path


def _place(member: str) -> str | None:
    """Where a wheel member goes under dist/: the needed libraries into lib/, the headers into include/."""
    if member.startswith(WHEEL_INCLUDE):
        return "include/" + member[len(WHEEL_INCLUDE):]
    if member.startswith(WHEEL_LIB) and member[len(WHEEL_LIB):] in LIBRARIES:
        return "lib/" + member[len(WHEEL_LIB):]
    return None


def extract_libraries(wheel: Path, install: Installation) -> dict[str, int]:
    """The needed libraries and headers into `dist/` (see `native.extract`)."""
    return native.extract(wheel, install.dist, _place, tuple(f"lib/{name}" for name in LIBRARIES),
                          WHEEL.setup_command)


def shim_command(compiler: str, include_dir: Path, lib_dirs: list[Path], libraries: tuple[str, ...],
                 output: Path, *, with_converter: bool) -> list[str]:
    """The g++ command line for the shim.

    RPATH (not RUNPATH: --disable-new-dtags) so that the library directory also serves the
    dependencies of the linked libraries, which carry no RPATH of their own.
    """
    command = [compiler, *CXXFLAGS, f"-I{include_dir}"]
    if with_converter:
        command.append("-DMNV1_WITH_CONVERTER")
    command += [str(SHIM_SOURCE), "-o", str(output)]
    command += [f"-L{d}" for d in lib_dirs] + [f"-l:{name}" for name in libraries]
    command += ["-Wl,--disable-new-dtags", *(f"-Wl,-rpath,{d}" for d in lib_dirs), "-Wl,--no-undefined"]
    return command


def build_shim(command: list[str], output: Path) -> Path:
    """Compile to a temporary name next to `output`, then rename."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.part")
    command = [str(temporary) if arg == str(output) else arg for arg in command]
    try:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines()
            raise BackendError(f"building the MindSpore Lite shim failed: {(errors or ['?'])[-1].strip()}",
                               "check that g++ supports C++17 (g++ 7 or newer)")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


def official_shim_command(backend, compiler: str) -> list[str]:
    """The runtime-only shim of an official package (its converter is the converter_lite binary)."""
    return shim_command(compiler, backend.runtime_include, backend.runtime_lib_dirs, ("libmindspore-lite.so",),
                        backend.shim, with_converter=False)
